import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../certs/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createSettingsCipher } from '../../../provisioning/settings/secrets.ts'
import { createSettingsService } from '../../../provisioning/settings/settings-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { applyMergePatch, delta, mergeLayers } from '../../../provisioning/settings/json-document.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const log = pino({ level: 'silent' })

async function setup() {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const store = new SqliteRegistryStore(':memory:')
  const ca = await makeTestCa()
  const authority = createDeviceAuthority({ store, ca, clock, random: cryptoRandom, log })
  const cipher = createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom)
  const settings = createSettingsService({ store, settings: store.settings, cipher, clock, log }, { maxBytes: 2048, maxDepth: 4 })
  const events = async () => (await store.eventsAfter(0, 10_000)).filter((e) => e.type === 'settings.changed').map((e) => e.data)
  return { clock, store, authority, settings, events }
}

describe('JSON documents', () => {
  it('applies RFC 7396 merge patches', async () => {
    expect(applyMergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } })).toEqual({ a: 'z', c: { d: 'e' } })
    expect(applyMergePatch({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] })
    expect(applyMergePatch({ a: 1 }, { b: { c: null } })).toEqual({ a: 1, b: {} })
  })

  it('merges layers with later layers winning, objects deep', async () => {
    expect(mergeLayers({ interval: 60, t: { max: 30, min: 0 } }, { t: { max: 40 } }, { interval: 5 })).toEqual({
      interval: 5,
      t: { max: 40, min: 0 },
    })
  })

  it('derives what the device still has to apply', async () => {
    expect(delta({ a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 9 }, gone: true })).toEqual({ b: { c: 2, d: 3 }, gone: null })
    expect(delta({ a: 1 }, { a: 1 })).toEqual({})
  })
})

describe('SettingsService', () => {
  it('merges fleet < group < device and bumps the version only when the effective document changes', async () => {
    const { authority, settings, events } = await setup()
    await authority.createDevice({ id: 'p1', group: 'pumps' }, 'op')
    expect(await settings.getDevice('p1')).toMatchObject({ version: 1, desired: {} })
    await settings.deliverable('p1') // its first delivery (the broker, on connect) writes its version row
    await settings.patchLayer({ kind: 'fleet' }, { interval: 60, thresholds: { max: 30 } }, { actor: 'op' })
    await settings.patchLayer({ kind: 'group', group: 'pumps' }, { thresholds: { max: 40 } }, { actor: 'op' })
    const v = await settings.patchDevice('p1', { interval: 5 }, { actor: 'op' })
    expect(v).toMatchObject({ version: 4, desired: { interval: 5, thresholds: { max: 40 } } })
    // a group change hidden by the device override changes nothing for the device
    await settings.patchLayer({ kind: 'group', group: 'pumps' }, { interval: 10 }, { actor: 'op' })
    expect((await settings.getDevice('p1')).version).toBe(4)
    expect(await events()).toEqual([
      { deviceId: 'p1', version: 2 },
      { deviceId: 'p1', version: 3 },
      { deviceId: 'p1', version: 4 },
    ])
  })

  it('reaches every device of a group with one group change', async () => {
    const { authority, settings, events } = await setup()
    const batch = await authority.prepareBatch({ count: 5, prefix: 'g-', group: 'line-1' }, 'op')
    await batch.commit()
    await authority.createDevice({ id: 'other', group: 'line-2' }, 'op')
    for (const id of ['g-0001', 'g-0002', 'g-0003', 'g-0004', 'g-0005', 'other']) await settings.deliverable(id)
    const res = await settings.patchLayer({ kind: 'group', group: 'line-1' }, { mode: 'eco' }, { actor: 'op' })
    expect(res.devicesChanged).toBe(5)
    expect((await events()).map((e) => e.deviceId).sort()).toEqual(['g-0001', 'g-0002', 'g-0003', 'g-0004', 'g-0005'])
    expect((await settings.getDevice('other')).desired).toEqual({})
  })

  it("a device's version changes whenever what a read of it showed changes (the ETag names one document), delivered or not", async () => {
    const { authority, settings, events } = await setup()
    await authority.createDevice({ id: 'p1' }, 'op')
    await settings.patchLayer({ kind: 'fleet' }, { interval: 60 }, { actor: 'op' })
    for (let i = 0; i < 2; i++)
      expect(await settings.getDevice('p1')).toMatchObject({ version: 1, desired: { interval: 60 }, reported: null })
    await settings.patchLayer({ kind: 'fleet' }, { interval: 30 }, { actor: 'op' })
    expect(await settings.getDevice('p1')).toMatchObject({ version: 2, desired: { interval: 30 } })
    expect(await settings.deliverable('p1')).toMatchObject({ version: 2, settings: { interval: 30 } })
    expect(await events()).toEqual([{ deviceId: 'p1', version: 2 }])
  })

  it('refuses a stale If-Match with 412 and changes nothing', async () => {
    const { authority, settings } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    await settings.patchDevice('a', { x: 1 }, { actor: 'op', ifMatch: 1 })
    await expect(settings.patchDevice('a', { x: 2 }, { actor: 'op', ifMatch: 1 })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_VERSION_MISMATCH', statusCode: 412 }),
    )
    expect(await settings.getDevice('a')).toMatchObject({ version: 2, desired: { x: 1 } })
    await settings.patchLayer({ kind: 'fleet' }, { y: 1 }, { actor: 'op', ifMatch: 0 })
    await expect(settings.patchLayer({ kind: 'fleet' }, { y: 2 }, { actor: 'op', ifMatch: 0 })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_VERSION_MISMATCH' }),
    )
  })

  it.each([
    ['fail/not-an-object', [1, 2], 'GH_SETTINGS_INVALID'],
    ['fail/reserved-key', { a: { $enc: 'x' } }, 'GH_SETTINGS_INVALID'],
    ['fail/too-large', { blob: 'x'.repeat(4096) }, 'GH_SETTINGS_TOO_LARGE'],
    ['fail/too-deep', { a: { b: { c: { d: { e: 1 } } } } }, 'GH_SETTINGS_TOO_LARGE'],
  ])('%s is refused and changes nothing', async (_name, body, code) => {
    const { authority, settings, store } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    const auditBefore = (await store.listAudit()).length
    await expect(settings.patchDevice('a', body, { actor: 'op' })).rejects.toThrow(expect.objectContaining({ code }))
    expect(await settings.getDevice('a')).toMatchObject({ version: 1, desired: {} })
    expect(await store.listAudit()).toHaveLength(auditBefore)
  })

  it('refuses a value that breaks the group schema before any device sees it', async () => {
    const { authority, settings } = await setup()
    await authority.createDevice({ id: 'a', group: 'pumps' }, 'op')
    await settings.setSchema('pumps', { type: 'object', properties: { interval: { type: 'integer', minimum: 1 } } }, 'op')
    await expect(settings.patchDevice('a', { interval: 0 }, { actor: 'op' })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_SCHEMA' }),
    )
    await expect(settings.patchLayer({ kind: 'group', group: 'pumps' }, { interval: 'often' }, { actor: 'op' })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_SCHEMA' }),
    )
    await expect(settings.patchLayer({ kind: 'fleet' }, { interval: -1 }, { actor: 'op' })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_SCHEMA' }),
    )
    expect((await settings.patchDevice('a', { interval: 5 }, { actor: 'op' })).desired).toEqual({ interval: 5 })
    await expect(settings.setSchema('pumps', { type: 'nonsense' }, 'op')).rejects.toThrow(
      expect.objectContaining({ code: 'GH_SETTINGS_INVALID' }),
    )
  })

  it('seals secrets at rest, redacts them in views and the audit log, and delivers them in clear', async () => {
    const { authority, settings, store } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    const view = await settings.patchDevice('a', { wifi: { ssid: 'plant', psk_secret: 'hunter2-very-secret' } }, { actor: 'op' })
    expect(view.desired).toEqual({ wifi: { ssid: 'plant', psk_secret: '[secret]' } })
    expect(JSON.stringify(await store.settings.getLayer('device:a'))).not.toContain('hunter2')
    expect(JSON.stringify(await store.listAudit())).not.toContain('hunter2')
    expect((await store.listAudit())[0]?.details).toMatchObject({ set: ['wifi.ssid', 'wifi.psk_secret'] })
    expect((await settings.deliverable('a'))?.settings).toEqual({ wifi: { ssid: 'plant', psk_secret: 'hunter2-very-secret' } })
    // a secret that changes to the same shape still bumps the version (the clear value is compared)
    expect((await settings.patchDevice('a', { wifi: { psk_secret: 'other' } }, { actor: 'op' })).version).toBe(3)
  })

  it('keeps the last report and derives the delta and in-sync flag', async () => {
    const { authority, settings } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    await settings.patchDevice('a', { interval: 5, tokenSecret: 's3' }, { actor: 'op' })
    await settings.report('a', { version: 1, settings: {} })
    expect(await settings.getDevice('a')).toMatchObject({ inSync: false, delta: { interval: 5, tokenSecret: '[secret]' } })
    await settings.report('a', { version: 2, settings: { interval: 5, tokenSecret: 's3' } })
    expect(await settings.getDevice('a')).toMatchObject({
      version: 2,
      inSync: true,
      delta: {},
      reported: { version: 2, settings: { interval: 5, tokenSecret: '[secret]' } },
    })
    await expect(settings.report('a', 'nope')).rejects.toThrow(expect.objectContaining({ code: 'GH_SETTINGS_INVALID' }))
  })

  it('gives the broker nothing for a revoked or unknown device, and refuses to change a revoked one', async () => {
    const { authority, settings } = await setup()
    await authority.createDevice({ id: 'a' }, 'op')
    await authority.revokeDevice('a', 'unspecified', 'op')
    expect(await settings.deliverable('a')).toBeUndefined()
    await expect(settings.patchDevice('a', { x: 1 }, { actor: 'op' })).rejects.toThrow(
      expect.objectContaining({ code: 'GH_DEVICE_REVOKED' }),
    )
    expect(await settings.deliverable('ghost')).toBeUndefined()
    await expect(settings.getDevice('ghost')).rejects.toThrow(expect.objectContaining({ code: 'GH_DEVICE_NOT_FOUND' }))
  })
})
