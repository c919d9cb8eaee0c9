import { InvalidDeviceId } from './errors.ts'

/**
 * The one device-id rule: 1-64 characters of [A-Za-z0-9._-], and not "." or "..". No slashes or MQTT
 * wildcards, so an id is always safe as one MQTT topic level, a file name and a certificate CN.
 * The source string is what JSON schemas use as `pattern`.
 */
export const DEVICE_ID_PATTERN_SOURCE = '^(?!\\.{1,2}$)[A-Za-z0-9._-]{1,64}$'
export const DEVICE_ID_PATTERN = new RegExp(DEVICE_ID_PATTERN_SOURCE)

export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value)
}

export function assertDeviceId(value: unknown): string {
  if (!isDeviceId(value)) throw new InvalidDeviceId(String(value).slice(0, 80))
  return value
}
