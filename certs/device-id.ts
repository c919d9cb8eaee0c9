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

// Claim certificates and claim sessions (docs/device-lifecycle.md).
// exactly as the issue-6 contract names them; `:` is outside the device id rule, so no device id is ever
// a claim CN or a claim clientId.
export const CLAIM_CN_PREFIX = 'claim:'
/** The claim id rule (one source): 3-41 of [a-z0-9-], starting with a letter or digit. */
export const CLAIM_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,40}$/
const CLAIM_ID_RULE = CLAIM_ID_PATTERN
const CLAIM_NONCE_RULE = /^[A-Za-z0-9_-]{16,48}$/
const CLAIM_CLIENT_ID_PREFIX = 'claim:'

/** The claimId of a claim certificate's CN `claim:<claimId>`, or null when the CN is not one. */
export function claimIdFromCommonName(cn: string): string | null {
  if (typeof cn !== 'string' || !cn.startsWith(CLAIM_CN_PREFIX)) return null
  const id = cn.slice(CLAIM_CN_PREFIX.length)
  return CLAIM_ID_RULE.test(id) ? id : null
}

/** The nonce of a claim session's MQTT clientId `claim:<nonce>`, or null when it is not one. */
export function claimNonceFromClientId(clientId: string): string | null {
  if (typeof clientId !== 'string' || !clientId.startsWith(CLAIM_CLIENT_ID_PREFIX)) return null
  const nonce = clientId.slice(CLAIM_CLIENT_ID_PREFIX.length)
  return CLAIM_NONCE_RULE.test(nonce) ? nonce : null
}

export function isClaimId(value: unknown): value is string {
  return typeof value === 'string' && CLAIM_ID_PATTERN.test(value)
}

// App certificates (docs/device-protocol.md "Apps"): CN `app:<name>`, and the MQTT clientId is the same
// string. `:` is outside the device id rule, so an app can never pass as a device (nor as a claim).
export const APP_CN_PREFIX = 'app:'
/** The app name rule: as the claim id rule, 3-41 of [a-z0-9-], starting with a letter or digit. */
export const APP_NAME_PATTERN = CLAIM_ID_PATTERN

/** The name of an app certificate's CN `app:<name>`, or null when the CN is not one. */
export function appNameFromCommonName(cn: string): string | null {
  if (typeof cn !== 'string' || !cn.startsWith(APP_CN_PREFIX)) return null
  const name = cn.slice(APP_CN_PREFIX.length)
  return APP_NAME_PATTERN.test(name) ? name : null
}
