import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cryptoRandom, identityFromCertificate } from '../../../certs/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createChangeFeed } from '../../../provisioning/events.ts'
import { createRegistryDirectory } from '../../../provisioning/registry-directory.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { claim } from '../../contract/claim-store.contract.ts'
import { deviceDirectoryContract, NOW } from '../../contract/device-directory.contract.ts'
import { certificate, device } from '../../contract/registry-store.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// The registry's directory on a real SQLite registry, written as the control plane writes it: the
// record and its event in one transaction, delivered by the change feed.
deviceDirectoryContract('the registry directory on SQLite', async () => {
  const clock = fixedClock(NOW)
  const log = pino({ level: 'silent' })
  const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
  onTestFinished(() => store.close())
  const feed = await createChangeFeed({ store, clock, log }) // never started: deliver() catches up
  const directory = createRegistryDirectory({ store, feed, clock, log, claims: store.claims })
  const write = (change: () => unknown, type: string, data: Record<string, unknown>) =>
    store.transaction(async () => {
      await change()
      await store.appendEvent(type, data, clock.now())
    })
  const deviceOf = async (serial: string) => (await store.getCertificate(serial))!.deviceId
  return {
    directory,
    clock,
    addDevice: (id, opts = {}) => store.insertDevice(device(id, opts)),
    addCertificate: (c) =>
      store.insertCertificate(
        certificate(c.serial, c.deviceId, { fingerprint: c.fingerprint, notBefore: c.notBefore, notAfter: c.notAfter }),
      ),
    revokeDevice: (deviceId) => write(() => store.updateDeviceStatus(deviceId, 'revoked', clock.now()), 'device.revoked', { deviceId }),
    disableDevice: (deviceId) => write(() => store.updateDeviceStatus(deviceId, 'disabled', clock.now()), 'device.disabled', { deviceId }),
    revokeCertificate: async (serial) =>
      write(
        () => store.updateCertificate(serial, { status: 'revoked', revokedAt: clock.now(), revocationReason: 'keyCompromise' }),
        'certificate.revoked',
        {
          deviceId: await deviceOf(serial),
          serial,
        },
      ),
    supersedeCertificate: async (serial, at) =>
      write(() => store.updateCertificate(serial, { status: 'superseded', supersededAt: at }), 'certificate.superseded', {
        deviceId: await deviceOf(serial),
        serial,
        supersededAt: at.toISOString(),
      }),
    addClaim: (c) =>
      store.claims.insert(
        claim(c.claimId, {
          serial: c.serial,
          fingerprint: c.fingerprint,
          expiresAt: c.expiresAt,
          ...(c.usedUp === true ? { maxUses: 1, uses: 1 } : {}),
        }),
        [],
      ),
    revokeClaim: (claimId) => write(async () => await store.claims.revoke(claimId, clock.now()), 'claim.revoked', { claimId }),
    deliver: async () => {
      await feed.catchUp()
    },
    audits: async () =>
      (await store.listAudit()).reverse().map(({ actor, action, subject, details }) => ({ actor, action, subject, details })),
  }
})

describe('the registry directory and device.updated', () => {
  it('drops its cached answer for a device when its group or tier changes, so the next connect sees the new tier', async () => {
    const clock = fixedClock(NOW)
    const log = pino({ level: 'silent' })
    const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
    onTestFinished(() => store.close())
    const feed = await createChangeFeed({ store, clock, log })
    const directory = createRegistryDirectory({ store, feed, clock, log })
    const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log })
    const issued = await authority.createDevice({ id: 'pump-1', group: 'g1' }, 'op')
    const identity = await identityFromCertificate(issued.certificateDer)
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'active', tier: 'standard', group: 'g1' })
    await authority.updateDevice('pump-1', { tier: 'premium', group: 'g2' }, 'op')
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'active', tier: 'premium', group: 'g2' })
  })
})

describe('the registry directory on an async registry', () => {
  it('caches nothing a lookup read while an event about its device overtook it: the next connect reads the change', async () => {
    const clock = fixedClock(NOW)
    const log = pino({ level: 'silent' })
    const store = new SqliteRegistryStore(join(tempDir(), 'gatehouse.db'))
    onTestFinished(() => store.close())
    const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log })
    const issued = await authority.createDevice({ id: 'pump-1' }, 'op')
    const identity = await identityFromCertificate(issued.certificateDer)
    // the registry answers a certificate read only when released, as PostgreSQL answers after a round trip
    let read = () => {}
    const readDone = new Promise<void>((resolve) => (read = resolve))
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const remote = new Proxy(store, {
      get(target, key) {
        if (key === 'getCertificateByFingerprint')
          return async (fingerprint: string) => {
            const cert = await target.getCertificateByFingerprint(fingerprint)
            read()
            await released
            return cert
          }
        const value: unknown = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const feed = await createChangeFeed({ store, clock, log })
    const directory = createRegistryDirectory({ store: remote, feed, clock, log })

    const first = directory.lookup(identity)
    await readDone
    await store.transaction(async () => {
      await store.updateCertificate(issued.serial, { status: 'revoked', revokedAt: clock.now(), revocationReason: 'keyCompromise' })
      await store.appendEvent('certificate.revoked', { deviceId: 'pump-1', serial: issued.serial }, clock.now())
    })
    await feed.catchUp() // the event reaches the directory while the first lookup's read is still on its way
    release()
    await first
    expect(await directory.lookup(identity)).toMatchObject({ kind: 'refused', reason: 'revoked' })
  })
})
