import { join } from 'node:path'
import pino from 'pino'
import { cryptoRandom, generateKeyPair } from '../../certs/index.ts'
import { createCsrPem } from '../../certs/create-csr.ts'
import type { CryptoKeyPair } from '../../certs/keys.ts'
import { createDeviceAuthority } from '../../provisioning/authority/device-authority.ts'
import { createClaimService, type CreatedClaim, type NewClaim } from '../../provisioning/claims/claim-service.ts'
import { createEnrollmentService, type ClaimRequestContext } from '../../provisioning/enrollment/enrollment-service.ts'
import type { ClaimStore } from '../../provisioning/store/claim-store.ts'
import { InMemoryClaimStore } from '../../provisioning/store/in-memory-claim-store.ts'
import { InMemoryRegistryStore } from '../../provisioning/store/in-memory-registry-store.ts'
import type { RegistryStore } from '../../provisioning/store/registry-store.ts'
import { SqliteRegistryStore } from '../../provisioning/store/sqlite-registry-store.ts'
import { fixedClock } from './clock.ts'
import { makeTestCa } from './test-ca.ts'

export const silentLog = pino({ level: 'silent' })

/** Authority, claim service and enrollment service on one registry: in memory, or SQLite in `dir`. */
export async function enrollmentFixture(
  opts: { dir?: string; renewalWindow?: number; validDays?: number; claimRequestRate?: { ratePerSecond: number; burst: number } } = {},
) {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  let store: RegistryStore
  let claims: ClaimStore
  if (opts.dir !== undefined) {
    const sqlite = new SqliteRegistryStore(join(opts.dir, 'gatehouse.db'))
    store = sqlite
    claims = sqlite.claims
  } else {
    store = new InMemoryRegistryStore()
    claims = new InMemoryClaimStore()
  }
  const ca = await makeTestCa()
  const log = silentLog
  const authority = createDeviceAuthority(
    { store, ca, clock, random: cryptoRandom, log, claims },
    { validDays: opts.validDays ?? 30, renewOverlapHours: 24 },
  )
  const claimService = createClaimService({ store, claims, authority, clock, random: cryptoRandom, log })
  const enrollment = createEnrollmentService(
    { authority, claims, store, clock, log },
    {
      ...(opts.renewalWindow !== undefined && { renewalWindow: opts.renewalWindow }),
      ...(opts.claimRequestRate !== undefined && { claimRequestRate: opts.claimRequestRate }),
    },
  )
  const context = (created: CreatedClaim, nonce = 'nonce-0123456789abcdef'): ClaimRequestContext => ({
    claimId: created.claim.id,
    claimSerial: created.claim.serial,
    nonce,
    clientId: `claim:${nonce}`,
    remoteAddress: '127.0.0.1',
  })
  const createClaim = (req: Partial<NewClaim> = {}) => claimService.create({ group: 'pumps', ...req }, 'operator:test')
  return { clock, store, claims, ca, authority, claimService, enrollment, context, createClaim, close: () => store.close() }
}

export const json = (value: unknown): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify(value)))

export interface DeviceKey {
  keys: CryptoKeyPair
  csr(cn: string): Promise<string>
}

export async function deviceKey(): Promise<DeviceKey> {
  const keys = await generateKeyPair('p256')
  return { keys, csr: (cn) => createCsrPem({ commonName: cn, keys }) }
}
