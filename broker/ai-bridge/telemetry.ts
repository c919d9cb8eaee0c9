/**
 * Telemetry payloads: UTF-8 JSON. An object is taken as it is; any other JSON value is wrapped under
 * the subtopic's dotted name (devices/d/telemetry/engine/temp with `81.5` -> { "engine.temp": 81.5 })
 * or under "value". Anything else (not UTF-8, not JSON) is undefined: counted and skipped.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true })

export function parseTelemetry(payload: Uint8Array, subtopic: readonly string[]): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(payload))
  } catch {
    return undefined
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  return { [subtopic.length > 0 ? subtopic.join('.') : 'value']: value }
}
