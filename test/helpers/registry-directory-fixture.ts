import pino from 'pino'
import { createChangeFeed } from '../../provisioning/events.ts'
import { createRegistryDirectory } from '../../provisioning/registry-directory.ts'
import type { ClaimStore } from '../../provisioning/store/claim-store.ts'
import type { RegistryStore } from '../../provisioning/store/registry-store.ts'
import { claim } from '../contract/claim-store.contract.ts'
import { type DirectoryFixture, NOW } from '../contract/device-directory.contract.ts'
import { certificate, device } from '../contract/registry-store.contract.ts'
import { fixedClock } from './clock.ts'

/**
 * The DeviceDirectory contract's fixture for the registry directory on a real registry (SQLite or PostgreSQL),
 * written as the control plane writes it: the record and its event in one transaction, delivered by the
 * change feed (never started: deliver() catches up).
 */
export async function registryDirectoryFixture(store: RegistryStore & { claims: ClaimStore }): Promise<DirectoryFixture> {
  const clock = fixedClock(NOW)
  const log = pino({ level: 'silent' })
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
}
