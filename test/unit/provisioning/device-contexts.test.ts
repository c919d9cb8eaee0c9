import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cryptoRandom } from '../../../certs/index.ts'
import { cachedDeviceContexts, createChangeFeed } from '../../../provisioning/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createSettingsCipher } from '../../../provisioning/settings/secrets.ts'
import { createSettingsService } from '../../../provisioning/settings/settings-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const log = pino({ level: 'silent' })

async function setup() {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const store = new SqliteRegistryStore(join(tempDir(), 'registry.db'))
  onTestFinished(() => store.close())
  const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log })
  const settings = createSettingsService({
    store,
    settings: store.settings,
    cipher: createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom),
    clock,
    log,
  })
  const feed = await createChangeFeed({ store, clock, log })
  return { store, authority, settings, feed }
}

describe('cachedDeviceContexts (what the AI bridge knows of a device)', () => {
  it('gives an active device its tier, group and settings with secrets masked, and nothing for an unknown one', async () => {
    const { store, authority, settings, feed } = await setup()
    await authority.createDevice({ id: 'pump-7', tier: 'premium', group: 'pumps' }, 'op')
    await settings.patchDevice('pump-7', { interval: 5, apiSecret: 'hunter2' }, { actor: 'op' })
    const contexts = cachedDeviceContexts({ store, settings }, feed)
    expect(await contexts.get('pump-7')).toEqual({ tier: 'premium', group: 'pumps', settings: { interval: 5, apiSecret: '[secret]' } })
    expect(await contexts.get('valve-1')).toBeUndefined()
  })

  it('serves from its cache until a control event about the device drops the entry', async () => {
    const { store, authority, settings, feed } = await setup()
    await authority.createDevice({ id: 'pump-7' }, 'op')
    const contexts = cachedDeviceContexts({ store, settings }, feed)
    await feed.poll()
    expect(await contexts.get('pump-7')).toMatchObject({ tier: 'standard' })

    await authority.disableDevice('pump-7', 'op')
    expect(await contexts.get('pump-7')).toMatchObject({ tier: 'standard' }) // cached: no SQLite read per message
    await feed.poll() // delivers device.disabled
    expect(await contexts.get('pump-7')).toBeUndefined() // not active: nothing goes to an AI service
  })
})
