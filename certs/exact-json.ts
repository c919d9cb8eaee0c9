import { capText } from './cap-text.ts'

/** An integer in JSON text beyond what a double holds exactly: where it is, as written, and what JSON.parse makes of it. */
export interface UnsafeInteger {
  /** dotted path of the value (array items by index), '(value)' for the top level; capped */
  path: string
  /** the literal as written (capped) */
  literal: string
  /** what JSON.parse makes of it */
  parsed: number
}

/**
 * The first integer written in JSON text (digits only, no fraction or exponent) outside ±(2^53 - 1), or undefined.
 * JSON.parse rounds such a number silently (9007199254740993 becomes 9007199254740992), so a device would get a
 * different number than was written; and beyond 2^53 a double cannot tell neighbouring integers apart. Numbers
 * written with a fraction or an exponent are floating point by intent and not checked. Call it on text that
 * JSON.parse accepted; it scans once, and only when the text holds 16 digits in a row.
 */
export function unsafeInteger(text: string): UnsafeInteger | undefined {
  if (!/\d{16}/.test(text)) return undefined
  /** containers open at the current position: the key or index of the value being read in each */
  const stack: { array: boolean; key: string; index: number }[] = []
  const pathHere = () => stack.map((c) => (c.array ? String(c.index) : c.key)).join('.') || '(value)'
  const number = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y
  for (let i = 0; i < text.length; ) {
    const ch = text[i] as string
    if (ch === '"') {
      const end = stringEnd(text, i)
      let next = end
      while (next < text.length && ' \t\r\n'.includes(text[next] as string)) next++
      const top = stack[stack.length - 1]
      if (top && !top.array && text[next] === ':') top.key = JSON.parse(text.slice(i, end)) as string
      i = end
    } else if (ch === '{' || ch === '[') {
      stack.push({ array: ch === '[', key: '', index: 0 })
      i++
    } else if (ch === '}' || ch === ']') {
      stack.pop()
      i++
    } else if (ch === ',') {
      const top = stack[stack.length - 1]
      if (top?.array) top.index++
      i++
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      number.lastIndex = i
      const m = number.exec(text) as RegExpExecArray
      i += m[0].length
      const parsed = Number(m[0])
      if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(parsed))
        return { path: capText(pathHere(), 128), literal: capText(m[0], 64), parsed }
    } else i++
  }
  return undefined
}

/** the index just past the string literal that opens at i */
function stringEnd(text: string, i: number): number {
  let j = i + 1
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
  return j + 1
}
