import { seeded } from '../chaos/chaos.ts'

/**
 * Seeded mutations of the files an operator hands Gatehouse (issue 17, "Bad input"): a settings merge patch
 * (`settings set --from-file`), a group JSON Schema (`settings schema set`), a claim's allow-list of device ids
 * (`claim create --allow-ids`; `device create-batch` reads no file: it takes --count and --prefix) and the
 * configuration file (`gatehouse.json` in the data directory). Each case is a valid file of its target mutated
 * one to three times: truncated, a value of the wrong type, nested thousands deep, huge numbers, invalid UTF-8,
 * a byte-order mark, NUL bytes, an enormous line, flipped bytes.
 */

export const FILE_TARGETS = ['settings-patch', 'settings-schema', 'claim-allow-ids', 'config'] as const
export type FileTarget = (typeof FILE_TARGETS)[number]

export interface FileCase {
  id: string
  target: FileTarget
  bytes: Buffer
}

const VALID: Record<FileTarget, string> = {
  'settings-patch': JSON.stringify({ rate: 5, wifi: { ssid: 'plant-4', channel: 11 }, tags: ['a', 'b'], debug: false }),
  'settings-schema': JSON.stringify({
    type: 'object',
    properties: { rate: { type: 'integer', minimum: 1, maximum: 50 }, name: { type: 'string', pattern: '^[a-z]+$' } },
  }),
  'claim-allow-ids': '# pumps of plant 4\npump-001\npump-002\n\npump-003\n',
  config: JSON.stringify({ logLevel: 'info', renewalWindow: 0.3, certValidDays: 90, hostnames: ['gw.plant-4.example'], aiEnabled: false }),
}

const WRONG_VALUES = ['[]', '{}', '"x"', '1', '-1', 'null', 'true', '1.5', '""', '[[[]]]']
const HUGE_NUMBERS = [
  '9007199254740993',
  '-9007199254740993',
  '1e400',
  '-1e400',
  '1'.repeat(400),
  '0.'.concat('0'.repeat(400), '1'),
  '1e-400',
]

type Mutation = (b: Buffer, r: () => number) => Buffer

const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)] as T
const at = (b: Buffer, r: () => number) => Math.floor(r() * (b.length + 1))
const splice = (b: Buffer, i: number, cut: number, insert: Buffer | string) =>
  Buffer.concat([b.subarray(0, i), Buffer.from(insert), b.subarray(i + cut)])

/** a JSON value's position in the text: after a ':' or '[' or ',' (so inserts land where values are) */
function valueSpot(b: Buffer, r: () => number): number {
  const spots: number[] = []
  for (const [i, c] of b.entries()) if (c === 0x3a || c === 0x5b || c === 0x2c) spots.push(i + 1)
  return spots.length ? pick(spots, r) : at(b, r)
}

/** the end of the value starting at i (a number, a literal or a string), to replace it */
function valueEnd(b: Buffer, i: number): number {
  const s = b.toString('latin1')
  let j = i
  while (j < s.length && s[j] === ' ') j++
  if (s[j] === '"') {
    j++
    while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1
    return j + 1
  }
  while (j < s.length && !',}]'.includes(s[j] as string)) j++
  return j
}

const MUTATIONS: Record<string, Mutation> = {
  truncate: (b, r) => b.subarray(0, Math.floor(r() * b.length)),
  wrongType: (b, r) => {
    const i = valueSpot(b, r)
    return splice(b, i, valueEnd(b, i) - i, pick(WRONG_VALUES, r))
  },
  deepNesting: (b, r) => {
    const n = pick([100, 5000, 100_000], r)
    const i = valueSpot(b, r)
    const deep = r() < 0.5 ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`
    return splice(b, i, valueEnd(b, i) - i, deep)
  },
  hugeNumber: (b, r) => {
    const i = valueSpot(b, r)
    return splice(b, i, valueEnd(b, i) - i, pick(HUGE_NUMBERS, r))
  },
  invalidUtf8: (b, r) => splice(b, at(b, r), 0, Buffer.from(pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]], r))),
  bom: (b) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]),
  nul: (b, r) => splice(b, at(b, r), 0, Buffer.alloc(1 + Math.floor(r() * 3))),
  enormousLine: (b, r) => {
    const i = valueSpot(b, r)
    const big = pick([`"${'x'.repeat(2_000_000)}"`, 'x'.repeat(2_000_000), ' '.repeat(2_000_000)], r)
    return splice(b, i, 0, big)
  },
  flipBytes: (b, r) => {
    const out = Buffer.from(b)
    for (let k = 0; k < 1 + Math.floor(r() * 4) && out.length; k++) {
      const i = Math.floor(r() * out.length)
      out[i] = (out[i] as number) ^ (1 << Math.floor(r() * 8))
    }
    return out
  },
}

/** `count` cases from `seed`, spread over the targets in turn; the same seed gives the same cases. */
export function fileCases(seed: number, count: number, targets: readonly FileTarget[] = FILE_TARGETS): FileCase[] {
  const r = seeded(seed)
  const names = Object.keys(MUTATIONS)
  const cases: FileCase[] = []
  for (let n = 0; n < count; n++) {
    const target = targets[n % targets.length] as FileTarget
    let bytes: Buffer = Buffer.from(VALID[target])
    const applied: string[] = []
    for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
      const name = pick(names, r)
      bytes = MUTATIONS[name]!(bytes, r)
      applied.push(name)
    }
    cases.push({ id: `${seed}/${n}/${target}/${applied.join('+')}`, target, bytes })
  }
  return cases
}
