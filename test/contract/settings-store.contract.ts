import { describe, expect, it } from 'vitest'
import type { DeviceRecord } from '../../provisioning/store/registry-store.ts'
import type { DeviceSettingsRecord, LayerScope, SettingsLayerRecord, SettingsStore } from '../../provisioning/store/settings-store.ts'
import { device } from './registry-store.contract.ts'

const t0 = new Date('2026-01-01T00:00:00.000Z')
const t1 = new Date('2026-01-02T00:00:00.000Z')

const layer = (scope: LayerScope, document: Record<string, unknown>, revision = 1): SettingsLayerRecord => ({
  scope,
  document,
  revision,
  updatedAt: t0,
  updatedBy: 'operator:test',
})

const settings = (deviceId: string, over: Partial<DeviceSettingsRecord> = {}): DeviceSettingsRecord => ({
  deviceId,
  version: 3,
  digest: `d-${deviceId}`,
  updatedAt: t0,
  reported: null,
  reportedVersion: null,
  reportedAt: null,
  ...over,
})

/**
 * The behaviour every SettingsStore must have, written from SqliteSettingsStore's: SqliteSettingsStore runs it
 * in integration/provisioning/, PgSettingsStore in integration/postgres/. `make` returns a fresh store with no
 * settings, on a registry that holds the devices given (groups and statuses count for the group and sync queries).
 */
export function settingsStoreContract(
  name: string,
  make: (devices: readonly DeviceRecord[]) => SettingsStore | Promise<SettingsStore>,
): void {
  describe(`${name} (SettingsStore contract)`, () => {
    it('keeps one layer per scope, replaced on put, its document as written (key order too), listed by scope', async () => {
      const store = await make([])
      expect(await store.listLayers()).toEqual([])
      await store.putLayer(layer('group:pumps', { z: 1, a: { b: [1, 'x', null] } }))
      await store.putLayer(layer('fleet', { interval: 5 }))
      await store.putLayer({ ...layer('fleet', { interval: 10 }, 2), updatedAt: t1, updatedBy: 'apikey:ops' })
      await store.putLayer(layer('device:pump-1', { led: true }))
      expect(await store.getLayer('fleet')).toEqual({ ...layer('fleet', { interval: 10 }, 2), updatedAt: t1, updatedBy: 'apikey:ops' })
      expect(await store.getLayer('device:nope')).toBeUndefined()
      const layers = await store.listLayers()
      expect(layers.map((l) => l.scope)).toEqual(['device:pump-1', 'fleet', 'group:pumps'])
      expect(Object.keys(layers[2]!.document)).toEqual(['z', 'a'])
      expect(layers[2]).toEqual(layer('group:pumps', { z: 1, a: { b: [1, 'x', null] } }))
    })

    it('keeps each device’s settings version and last report, replaced on put', async () => {
      const store = await make([device('pump-1')])
      await store.putDeviceSettings(settings('pump-1'))
      expect(await store.getDeviceSettings('pump-1')).toEqual(settings('pump-1'))
      const reported = settings('pump-1', {
        version: 4,
        digest: 'd2',
        reported: { interval: 5, n: { m: [1] } },
        reportedVersion: 4,
        reportedAt: t1,
      })
      await store.putDeviceSettings(reported)
      expect(await store.getDeviceSettings('pump-1')).toEqual(reported)
      expect(await store.getDeviceSettings('ghost')).toBeUndefined()
    })

    it('lists the devices with settings, by id, all or one group’s', async () => {
      const store = await make([
        device('c', { group: 'other' }),
        device('b', { group: 'pumps' }),
        device('a', { group: 'pumps' }),
        device('d'),
      ])
      for (const id of ['c', 'a', 'b']) await store.putDeviceSettings(settings(id))
      expect(await store.deviceIdsWithSettings()).toEqual(['a', 'b', 'c'])
      expect(await store.deviceIdsWithSettings('pumps')).toEqual(['a', 'b'])
      expect(await store.deviceIdsWithSettings('none')).toEqual([])
    })

    it('keeps a schema per group, replaced on put, deleted, and lists the groups that have one', async () => {
      const store = await make([])
      const schema = { group: 'pumps', schema: { type: 'object', required: ['x'] }, updatedAt: t0, updatedBy: 'operator:test' }
      await store.putSchema(schema)
      await store.putSchema({ ...schema, group: 'ants' })
      await store.putSchema({ ...schema, schema: { type: 'object' }, updatedAt: t1 })
      expect(await store.getSchema('pumps')).toEqual({ ...schema, schema: { type: 'object' }, updatedAt: t1 })
      expect(await store.getSchema('nope')).toBeUndefined()
      expect(await store.schemaGroups()).toEqual(['ants', 'pumps'])
      await store.deleteSchema('ants')
      await store.deleteSchema('ghost')
      expect(await store.getSchema('ants')).toBeUndefined()
      expect(await store.schemaGroups()).toEqual(['pumps'])
    })

    it('counts the layers and device reports holding a sealed secret, and finds a sealed layer', async () => {
      const store = await make([device('a'), device('b')])
      expect(await store.countSealed()).toBe(0)
      expect(await store.aSealedLayer()).toBeUndefined()
      await store.putLayer(layer('fleet', { interval: 5 }))
      await store.putLayer(layer('group:pumps', { pin: { $enc: 'sealed' } }))
      await store.putDeviceSettings(settings('a', { reported: { pin: { $enc: 'x' } }, reportedVersion: 3, reportedAt: t0 }))
      await store.putDeviceSettings(settings('b', { reported: { pin: 'plain' }, reportedVersion: 3, reportedAt: t0 }))
      expect(await store.countSealed()).toBe(2)
      expect(await store.aSealedLayer()).toEqual(layer('group:pumps', { pin: { $enc: 'sealed' } }))
    })

    it('counts active devices whose report names their current version as in sync, the other active ones as not', async () => {
      const store = await make([
        device('a'),
        device('b'),
        device('c'),
        device('d', { status: 'disabled' }),
        device('e', { status: 'revoked' }),
      ])
      await store.putDeviceSettings(settings('a', { reportedVersion: 3, reportedAt: t0, reported: {} }))
      await store.putDeviceSettings(settings('b', { reportedVersion: 2, reportedAt: t0, reported: {} }))
      await store.putDeviceSettings(settings('d', { reportedVersion: 3, reportedAt: t0, reported: {} }))
      // c has no settings row: an active device, not in sync
      expect(await store.syncCounts()).toEqual({ inSync: 1, outOfSync: 2 })
    })

    it('hands out copies: changing a returned document changes nothing stored', async () => {
      const store = await make([])
      await store.putLayer(layer('fleet', { interval: 5 }))
      const got = (await store.getLayer('fleet'))!
      got.document.interval = 1
      expect(await store.getLayer('fleet')).toEqual(layer('fleet', { interval: 5 }))
    })
  })
}
