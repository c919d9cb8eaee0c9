import { InvalidDeviceId } from './errors.ts'

/**
 * The one device-id rule: 1-64 characters of [A-Za-z0-9._-]. No slashes or MQTT wildcards, so an id
 * is always safe as one MQTT topic level, a file name and a certificate CN.
 */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
export const DEVICE_ID_PATTERN_SOURCE = '^[A-Za-z0-9._-]{1,64}$'

export function isDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value) && value !== '.' && value !== '..'
}

export function assertDeviceId(value: unknown): string {
  if (!isDeviceId(value)) throw new InvalidDeviceId(String(value))
  return value
}
