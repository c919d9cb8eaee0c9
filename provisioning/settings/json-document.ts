import { createHash } from 'node:crypto'

export type JsonObject = Record<string, unknown>

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Keys that reach Object.prototype when a document is merged or a dotted path is walked. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * Why a key may not appear in a settings document (a patch, a report, a dotted CLI key), or undefined:
 * `$...` is reserved (sealed secrets are {"$enc": ...}), and prototype keys would pollute objects.
 */
export function keyProblem(key: string): string | undefined {
  if (PROTOTYPE_KEYS.has(key)) return `'${key}' may not be a key (it reaches Object.prototype); rename it`
  if (key.startsWith('$')) return "keys may not start with '$' (reserved)"
  return undefined
}

/** An untrusted string as it may appear in an error or a log line: at most max characters, marked when cut. */
export function cut(s: string, max = 128): string {
  return s.length > max ? `${s.slice(0, max)}...[cut ${s.length - max}]` : s
}

/** The first key of a document, at any depth (arrays too), that keyProblem refuses: its dotted path (cut) and why. */
export function findBadKey(v: unknown, prefix = ''): { path: string; problem: string } | undefined {
  const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : isObject(v) ? Object.entries(v) : []
  for (const [k, inner] of entries) {
    const path = prefix ? `${prefix}.${k}` : k
    const problem = Array.isArray(v) ? undefined : keyProblem(k)
    if (problem) return { path: cut(path), problem }
    const deeper = findBadKey(inner, path)
    if (deeper) return deeper
  }
  return undefined
}

/**
 * Why an untrusted JSON value cannot be a settings document, found without recursion (so a body nested
 * thousands deep cannot overflow the stack in the recursive walks that follow), or undefined: nested
 * deeper than maxDepth, or a number JSON cannot carry (1e400 parses as Infinity and would be stored as null).
 */
export function shapeProblem(v: unknown, maxDepth: number): { path: string; problem: string; tooDeep: boolean } | undefined {
  const stack: [unknown, number, string][] = [[v, 0, '']]
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, depth, path] = next
    if (typeof value === 'number' && !Number.isFinite(value))
      return { path: cut(path || '(value)'), problem: 'a number must be finite (JSON has no Infinity or NaN)', tooDeep: false }
    if (typeof value !== 'object' || value === null) continue
    if (depth >= maxDepth) return { path: cut(path || '(value)'), problem: `nested deeper than ${maxDepth} levels`, tooDeep: true }
    for (const [k, inner] of Object.entries(value)) stack.push([inner, depth + 1, path ? `${path}.${k}` : k])
  }
  return undefined
}

/** RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces. Returns a new value. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch)
  const out: JsonObject = isObject(target) ? structuredClone(target) : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = applyMergePatch(out[k], v)
  }
  return out
}

/** Layers merged left to right (fleet < group < device): objects deep-merge, other values replace. */
export function mergeLayers(...layers: JsonObject[]): JsonObject {
  const out: JsonObject = {}
  for (const layer of layers) deepAssign(out, layer)
  return out
}

function deepAssign(into: JsonObject, from: JsonObject): void {
  for (const [k, v] of Object.entries(from)) {
    const current = into[k]
    if (isObject(v) && isObject(current)) deepAssign(current, v)
    else into[k] = structuredClone(v)
  }
}

/** JSON with object keys sorted, so equal documents serialise equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

export function digest(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex')
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b)
}

/** Nesting depth of a JSON value: a scalar is 0, {} or [] is 1. */
export function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf))
  if (isObject(v)) return 1 + Math.max(0, ...Object.values(v).map(depthOf))
  return 0
}

/**
 * What the device still has to apply: for each path where desired and reported differ, the desired
 * value (null where the desired document no longer has the key). Objects are compared key by key.
 */
export function delta(desired: JsonObject, reported: JsonObject | null): JsonObject {
  const out: JsonObject = {}
  const rep = reported ?? {}
  for (const k of new Set([...Object.keys(desired), ...Object.keys(rep)])) {
    const d = desired[k]
    const r = rep[k]
    if (isObject(d) && isObject(r)) {
      const inner = delta(d, r)
      if (Object.keys(inner).length) out[k] = inner
    } else if (!(k in desired)) {
      out[k] = null
    } else if (!deepEqual(d, r)) {
      out[k] = structuredClone(d)
    }
  }
  return out
}
