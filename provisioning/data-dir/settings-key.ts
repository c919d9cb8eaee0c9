import { existsSync, readFileSync, statSync } from 'node:fs'
import type { Random } from '../../certs/index.ts'
import { CaKeyPermissions, SettingsKeyInvalid, SettingsKeyMissing } from '../errors.ts'
import { writeFileAtomic } from './atomic-file.ts'
import { dataDirLayout } from './layout.ts'

/**
 * The AES-256 key that seals secret settings: GATEHOUSE_SETTINGS_KEY (base64 of 32 bytes) when given,
 * else <data-dir>/settings.key, created 0600 by init, or on first use while nothing is sealed
 * (sealedCount() is 0). A missing key while sealed secrets exist is GH_SETTINGS_KEY_MISSING: a new key
 * would leave the registry with secrets under two keys. A key file readable by others is refused.
 */
export async function loadSettingsKey(
  dataDir: string,
  fromEnv: string | undefined,
  random: Random,
  sealedCount: () => Promise<number>,
): Promise<Uint8Array> {
  if (fromEnv) return decode(fromEnv, 'GATEHOUSE_SETTINGS_KEY')
  const path = dataDirLayout(dataDir).settingsKey
  if (!existsSync(path)) {
    const sealed = await sealedCount()
    if (sealed > 0) throw new SettingsKeyMissing(path, sealed)
    writeFileAtomic(path, `${Buffer.from(random.bytes(32)).toString('base64')}\n`, 0o600)
  }
  const mode = statSync(path).mode
  if ((mode & 0o077) !== 0) throw new CaKeyPermissions(path, (mode & 0o777).toString(8).padStart(4, '0'))
  return decode(readFileSync(path, 'utf8'), path)
}

function decode(text: string, where: string): Uint8Array {
  const key = Buffer.from(text.trim(), 'base64')
  if (key.length !== 32) throw new SettingsKeyInvalid(`${where} must hold 32 bytes in base64 (openssl rand -base64 32)`)
  return new Uint8Array(key)
}
