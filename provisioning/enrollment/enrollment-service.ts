import type { Logger } from 'pino'
import { capText, createEventThrottle, type Clock } from '../../certs/index.ts'
import { memoryRateLimiters, type RateLimit, type RateLimiterFactory } from '../api/rate-limiter.ts'
import type { DeviceAuthority, IssuedCertificate } from '../authority/device-authority.ts'
import {
  claimChecksBeforeRepeat,
  claimChecksForNewDevice,
  hashClaimToken,
  runClaimChecks,
  type ClaimCheckInput,
} from '../claims/claim-checks.ts'
import { claimActor } from '../claims/claim-service.ts'
import {
  ClaimNotFound,
  ClaimRateLimited,
  CsrKeyInUse,
  DeviceExists,
  DeviceNotFound,
  DeviceRevoked,
  DeviceStateConflict,
  RenewalKeyReused,
  RenewalNotCurrent,
  RenewalTooEarly,
} from '../errors.ts'
import type { ClaimRecord, ClaimStore } from '../store/claim-store.ts'
import type { CertificateRecord, RegistryStore } from '../store/registry-store.ts'
import {
  certificateKeyOf,
  csrKeyOf,
  parseClaimRequest,
  parseRenewalRequest,
  requestIdOf,
  type ClaimRequest,
} from './enrollment-requests.ts'

// Structurally the broker's EnrollmentService (broker/enrollment.ts); provisioning never imports broker/.
export interface EnrollmentAnswer {
  ok: boolean
  [field: string]: unknown
}
export interface ClaimRequestContext {
  claimId: string
  claimSerial: string
  nonce: string
  clientId: string
  remoteAddress: string | null
}
export interface RenewalRequestContext {
  deviceId: string
  serial: string
  remoteAddress: string | null
}

export interface EnrollmentServiceDeps {
  authority: Pick<DeviceAuthority, 'prepareDevice' | 'prepareRenewal' | 'chainPem'>
  claims: ClaimStore
  store: RegistryStore
  clock: Clock
  log: Logger
}

export interface EnrollmentOptions {
  /** the last fraction of a certificate's validity in which the device may renew it (0 < x <= 1; default 1/3) */
  renewalWindow?: number
  /** claim requests per claim, from all its sessions and addresses (token bucket). Default 5/s, burst 50 */
  claimRequestRate?: RateLimit
  /** where the claim buckets are kept: Redis in a cluster (gatehouse.ts), so every node spends one budget; default memory */
  rateLimiters?: RateLimiterFactory
  /** a refusal (claim.refused, renewal.refused) is audited and logged at most once per interval per subject, code and address. Default 60000 ms */
  auditIntervalMs?: number
}

export const DEFAULT_CLAIM_REQUEST_RATE: Readonly<RateLimit> = Object.freeze({ ratePerSecond: 5, burst: 50 })
/** Bound on remembered refusal keys (the throttle forgets the least recently used first). */
const MAX_THROTTLED_KEYS = 100_000

/** Expected refusals: answered on the reply topic. Anything else rejects (the broker answers GH_ENROLLMENT_UNAVAILABLE). */
const REFUSAL = /^GH_(CLAIM_|RENEWAL_|CSR_|DEVICE_(ID_INVALID|EXISTS|REVOKED|NOT_FOUND|STATE)$)/
const codeOf = (err: unknown): string | undefined => (err as { code?: unknown } | null)?.code as string | undefined

type Certificate = Pick<CertificateRecord, 'serial' | 'notBefore' | 'notAfter' | 'pem'> & { deviceId: string }

/**
 * Claim provisioning and renewal requests that devices make over MQTT (docs/device-lifecycle.md). The
 * broker hands over the raw payload; every answer is `{ ok: true, … }` or `{ ok: false, error }`, with the
 * requestId echoed, and every refusal is audited here.
 */
export function createEnrollmentService(deps: EnrollmentServiceDeps, options: EnrollmentOptions = {}) {
  const { authority, claims, store, clock, log } = deps
  const window = options.renewalWindow ?? 1 / 3
  if (!(window > 0 && window <= 1)) throw new RangeError(`renewalWindow must be in (0, 1], not ${window}`)
  const claimRate = (options.rateLimiters ?? memoryRateLimiters(clock))('claim', options.claimRequestRate ?? DEFAULT_CLAIM_REQUEST_RATE)
  const throttle = createEventThrottle({ intervalMs: options.auditIntervalMs ?? 60_000, maxKeys: MAX_THROTTLED_KEYS }, clock)

  const renewAfterOf = (c: Pick<CertificateRecord, 'notBefore' | 'notAfter'>): Date =>
    new Date(c.notBefore.getTime() + Math.floor((1 - window) * (c.notAfter.getTime() - c.notBefore.getTime())))

  function issuedAnswer(c: Certificate, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      deviceId: c.deviceId,
      certificate: c.pem,
      chain: authority.chainPem(),
      serial: c.serial,
      notBefore: c.notBefore.toISOString(),
      notAfter: c.notAfter.toISOString(),
      renewAfter: renewAfterOf(c).toISOString(),
      ...extra,
    }
  }
  const fromIssued = (i: IssuedCertificate): Certificate => ({
    deviceId: i.deviceId,
    serial: i.serial,
    notBefore: i.notBefore,
    notAfter: i.notAfter,
    pem: i.certificatePem,
  })

  /**
   * A refusal's audit record and info log line, at most once per interval per key (subject, code and
   * address: the same throttle as the broker's refusals), the next one with the count suppressed.
   * The requester's strings are capped (capText).
   */
  function refusal(
    key: string,
    record: { actor: string; action: string; subject: string; details: Record<string, unknown> },
    logFields: Record<string, unknown>,
    msg: string,
  ): void {
    const hit = throttle.hit(capText(key, 512))
    if (!hit.emit) return
    // fire and log: a refusal is answered without waiting for its audit row (a failure is counted by the store)
    store
      .appendAudit({ at: clock.now(), ...record, details: { ...record.details, suppressed: hit.suppressed } })
      .catch((err: unknown) => log.error({ err, action: record.action }, 'audit write failed'))
    log.info({ ...logFields, suppressed: hit.suppressed }, msg)
  }

  async function answer(
    payload: Uint8Array,
    run: () => Promise<Record<string, unknown>>,
    refused: (err: Error & { code: string }) => void,
  ): Promise<EnrollmentAnswer> {
    const requestId = requestIdOf(payload)
    const echo = requestId === undefined ? {} : { requestId }
    try {
      return { ok: true, ...echo, ...(await run()) }
    } catch (err) {
      const code = codeOf(err)
      if (code === undefined || !REFUSAL.test(code)) throw err
      refused(err as Error & { code: string })
      const renewAfter = (err as { renewAfter?: string }).renewAfter
      return { ok: false, ...echo, error: { code, message: (err as Error).message, ...(renewAfter && { renewAfter }) } }
    }
  }

  // ---- claims ----------------------------------------------------------------------------------------

  /** The checks' input, with what they ask of the stores read first (the request's token, device and key), so the checks stay synchronous. */
  async function checkInput(claim: ClaimRecord, req: ClaimRequest, keySha256 = ''): Promise<ClaimCheckInput> {
    const tokenHash = req.token === undefined ? undefined : hashClaimToken(req.token)
    const tokenState = tokenHash === undefined ? 'unknown' : await claims.tokenState(claim.id, tokenHash)
    const deviceExists = (await store.getDevice(req.deviceId)) !== undefined
    const holder = keySha256 ? await claims.deviceIdWithKey(keySha256) : undefined
    return {
      claim,
      deviceId: req.deviceId,
      token: req.token,
      now: clock.now(),
      tokenState: (hash) => (hash === tokenHash ? tokenState : 'unknown'),
      deviceExists: (id) => id === req.deviceId && deviceExists,
      keySha256,
      deviceWithKey: (hash) => (hash === keySha256 ? holder : undefined),
    }
  }

  /** The certificate this claim already gave this device for this key (the answer was lost), or undefined. */
  async function repeatOf(claim: ClaimRecord, req: ClaimRequest, keySha256: string): Promise<Certificate | undefined> {
    const earlier = await claims.getDevice(req.deviceId)
    if (earlier === undefined || earlier.claimId !== claim.id) return undefined
    if (keySha256 !== earlier.keySha256) return undefined
    const cert = await store.getCertificate(earlier.serial)
    return cert && cert.status === 'active' && (await store.getDevice(req.deviceId))?.status === 'active' ? cert : undefined
  }

  async function claimDevice(context: ClaimRequestContext, req: ClaimRequest): Promise<Record<string, unknown>> {
    const current = async (): Promise<ClaimRecord> => {
      const claim = await claims.get(context.claimId)
      if (!claim || claim.serial !== context.claimSerial) throw new ClaimNotFound(context.claimId)
      return claim
    }
    const claim = await current()
    runClaimChecks(claimChecksBeforeRepeat, await checkInput(claim, req))
    const key = await csrKeyOf(req.csr, req.deviceId)
    const repeat = await repeatOf(claim, req, key)
    if (repeat) return issuedAnswer(repeat)
    runClaimChecks(claimChecksForNewDevice, await checkInput(claim, req, key))
    const prepared = await authority.prepareDevice(
      { id: req.deviceId, group: claim.group, tier: claim.tier, csr: req.csr },
      claimActor(claim.id),
    )
    const issued = prepared.issued
    try {
      await store.transaction(async () => {
        // again, with the claim as it is now: concurrent requests never exceed its uses or reuse a token
        const now = await current()
        runClaimChecks([...claimChecksBeforeRepeat, ...claimChecksForNewDevice], await checkInput(now, req, key))
        await prepared.commit()
        const at = clock.now()
        await claims.addUse(now.id)
        if (now.tokensRequired && req.token !== undefined) await claims.useToken(now.id, hashClaimToken(req.token), req.deviceId, at)
        await claims.recordDevice({
          deviceId: req.deviceId,
          claimId: now.id,
          serial: issued.serial,
          keySha256: certificateKeyOf(issued.certificatePem),
          createdAt: at,
        })
      })
    } catch (err) {
      // the same request twice at once: the one that lost the race gets the winner's certificate
      const lostRace = err instanceof DeviceExists || ['GH_CLAIM_USED_UP', 'GH_CLAIM_TOKEN_INVALID'].includes(codeOf(err) ?? '')
      const again = lostRace ? await repeatOf(await current(), req, key) : undefined
      if (again) return issuedAnswer(again)
      throw err
    }
    log.info(
      { deviceId: req.deviceId, serial: issued.serial, claimId: claim.id, clientId: context.clientId },
      'device provisioned by claim',
    )
    return issuedAnswer(fromIssued(issued))
  }

  // ---- renewals --------------------------------------------------------------------------------------

  /** The device's newest active certificate when it has this key and is not the session's (a repeat). */
  async function renewedWith(deviceId: string, sessionSerial: string, key: string): Promise<CertificateRecord | undefined> {
    const newest = (await store.listCertificates(deviceId)).filter((c) => c.status === 'active').at(-1)
    return newest && newest.serial !== sessionSerial && certificateKeyOf(newest.pem) === key ? newest : undefined
  }

  async function previousValidUntil(serial: string): Promise<Record<string, unknown>> {
    const at = (await store.getCertificate(serial))?.supersededAt
    return at ? { previousValidUntil: at.toISOString() } : {}
  }

  async function renewDevice(context: RenewalRequestContext, csr: string): Promise<Record<string, unknown>> {
    const id = context.deviceId
    const device = await store.getDevice(id)
    if (!device) throw new DeviceNotFound(id)
    if (device.status === 'revoked') throw new DeviceRevoked(id)
    if (device.status !== 'active') throw new DeviceStateConflict(id, device.status, 'it cannot renew its certificate')
    const key = await csrKeyOf(csr, id)
    const repeat = await renewedWith(id, context.serial, key)
    if (repeat) return issuedAnswer(repeat, await previousValidUntil(context.serial))
    const session = await store.getCertificate(context.serial)
    if (!session || session.deviceId !== id || session.status !== 'active') throw new RenewalNotCurrent(context.serial, id)
    const opens = renewAfterOf(session)
    if (clock.now().getTime() < opens.getTime())
      throw Object.assign(new RenewalTooEarly(session.serial, opens.toISOString()), { renewAfter: opens.toISOString() })
    if (certificateKeyOf(session.pem) === key) throw new RenewalKeyReused(session.serial)
    const holder = await claims.deviceIdWithKey(key)
    if (holder !== undefined && holder !== id) throw new CsrKeyInUse()
    const prepared = await authority.prepareRenewal(id, { csr, via: 'mqtt' }, `device:${id}`)
    try {
      await store.transaction(async () => {
        if ((await store.getCertificate(context.serial))?.status !== 'active') throw new RenewalNotCurrent(context.serial, id)
        await prepared.commit()
      })
    } catch (err) {
      const again = err instanceof RenewalNotCurrent ? await renewedWith(id, context.serial, key) : undefined
      if (again) return issuedAnswer(again, await previousValidUntil(context.serial))
      throw err
    }
    return issuedAnswer(fromIssued(prepared.issued), await previousValidUntil(context.serial))
  }

  return {
    claim(context: ClaimRequestContext, payload: Uint8Array): Promise<EnrollmentAnswer> {
      let requested: string | null = null
      return answer(
        payload,
        async () => {
          const rate = await claimRate.take(context.claimId)
          if (!rate.ok) throw new ClaimRateLimited(context.claimId, rate.retryAfterSeconds)
          const req = parseClaimRequest(payload)
          requested = capText(req.deviceId)
          return claimDevice(context, req)
        },
        (err) => {
          const subject = claimActor(context.claimId)
          refusal(
            `claim.refused:${subject}:${err.code}:${context.remoteAddress}`,
            {
              actor: subject,
              action: 'claim.refused',
              subject,
              details: { code: err.code, deviceId: requested, clientId: context.clientId, remoteAddress: context.remoteAddress },
            },
            {
              claimId: context.claimId,
              clientId: context.clientId,
              deviceId: requested,
              remoteAddress: context.remoteAddress,
              code: err.code,
            },
            'claim refused',
          )
        },
      )
    },

    renew(context: RenewalRequestContext, payload: Uint8Array): Promise<EnrollmentAnswer> {
      return answer(
        payload,
        async () => renewDevice(context, parseRenewalRequest(payload).csr),
        (err) => {
          refusal(
            `renewal.refused:${context.deviceId}:${err.code}:${context.remoteAddress}`,
            {
              actor: `device:${context.deviceId}`,
              action: 'renewal.refused',
              subject: context.deviceId,
              details: { code: err.code, serial: context.serial, remoteAddress: context.remoteAddress },
            },
            { deviceId: context.deviceId, serial: context.serial, remoteAddress: context.remoteAddress, code: err.code },
            'renewal refused',
          )
        },
      )
    },

    /** When a certificate's renewal window opens. */
    renewAfterOf,

    /** Claim requests refused over claimRequestRate (GH_CLAIM_RATE_LIMITED) since the service was made. */
    claimRateLimited: () => claimRate.refused(),
  }
}

export type EnrollmentService = ReturnType<typeof createEnrollmentService>
