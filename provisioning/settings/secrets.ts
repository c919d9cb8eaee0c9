import { createCipheriv, createDecipheriv } from 'node:crypto'
import type { Random } from '../../certs/index.ts'
import { SettingsKeyInvalid } from '../errors.ts'
import { isObject, type JsonObject } from './json-document.ts'

/**
 * Secret settings, by naming rule: a key whose name ends in `_secret` or `Secret` (e.g. `wifi_secret`,
 * `apiSecret`) holds a secret. Its value, whatever JSON it is, is stored encrypted with AES-256-GCM
 * ({"$enc": "v1:<base64 iv|tag|ciphertext>"}), shown as "[secret]" in the API, the CLI, logs and the
 * audit log, and delivered in clear only to the device, over its mutual-TLS session.
 */
export const SECRET_KEY_PATTERN = /(_secret|Secret)$/
export const REDACTED = '[secret]'
const ENC = '$enc'

export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key)
}

export interface SettingsCipher {
  encrypt(value: unknown): { [ENC]: string }
  decrypt(sealed: unknown): unknown
  /** Throws why the cipher cannot be used (its key is missing), before a change is attempted. */
  assertUsable(): void
}

/** A cipher without its key: every use throws `reason` (views show secrets as [secret]). */
export function unusableCipher(reason: Error): SettingsCipher {
  const fail = (): never => {
    throw reason
  }
  return { encrypt: fail, decrypt: fail, assertUsable: fail }
}

export function createSettingsCipher(key: Uint8Array, random: Random): SettingsCipher {
  if (key.length !== 32) throw new SettingsKeyInvalid(`expected 32 bytes, got ${key.length}`)
  return {
    assertUsable() {},
    encrypt(value) {
      const iv = random.bytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const ct = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
      return { [ENC]: `v1:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}` }
    },
    decrypt(sealed) {
      const text = isObject(sealed) ? sealed[ENC] : undefined
      if (typeof text !== 'string' || !text.startsWith('v1:')) throw new SettingsKeyInvalid('a stored secret is not in the v1 format')
      const raw = Buffer.from(text.slice(3), 'base64')
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
        decipher.setAuthTag(raw.subarray(12, 28))
        return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'))
      } catch (err) {
        throw new SettingsKeyInvalid('a stored secret does not decrypt: the settings key is not the one it was sealed with', { cause: err })
      }
    },
  }
}

/** Maps every secret value of a document (at any depth) through fn; the rest is copied. */
function mapSecrets(doc: JsonObject, fn: (value: unknown) => unknown): JsonObject {
  const out: JsonObject = {}
  for (const [k, v] of Object.entries(doc)) {
    if (isSecretKey(k) && v !== null) out[k] = fn(v)
    else if (isObject(v)) out[k] = mapSecrets(v, fn)
    else out[k] = structuredClone(v)
  }
  return out
}

/** Seals every secret value, whatever it looks like: nothing given to it is taken as already sealed. */
export const sealSecrets = (doc: JsonObject, cipher: SettingsCipher): JsonObject => mapSecrets(doc, (v) => cipher.encrypt(v))
export const openSecrets = (doc: JsonObject, cipher: SettingsCipher): JsonObject => mapSecrets(doc, (v) => cipher.decrypt(v))
/** For views that redact secrets anyway: a value that does not decrypt becomes [secret] and is reported to onFail. */
export const openSecretsForView = (doc: JsonObject, cipher: SettingsCipher, onFail: (err: unknown) => void): JsonObject =>
  mapSecrets(doc, (v) => {
    try {
      return cipher.decrypt(v)
    } catch (err) {
      onFail(err)
      return REDACTED
    }
  })
/** Throws GH_SETTINGS_KEY_INVALID unless every secret of doc opens with this cipher (a start-up check). */
export function assertOpens(doc: JsonObject, cipher: SettingsCipher): void {
  openSecrets(doc, cipher)
}
export const redactSecrets = (doc: JsonObject): JsonObject => mapSecrets(doc, () => REDACTED)

/** The paths of secret keys in a patch, for the audit log (never their values). */
export function describePatch(patch: JsonObject, prefix = ''): { set: string[]; unset: string[] } {
  const set: string[] = []
  const unset: string[] = []
  for (const [k, v] of Object.entries(patch)) {
    const path = prefix ? `${prefix}.${k}` : k
    if (v === null) unset.push(path)
    else if (isObject(v) && !isSecretKey(k)) {
      const inner = describePatch(v, path)
      set.push(...inner.set)
      unset.push(...inner.unset)
    } else set.push(path)
  }
  return { set, unset }
}
