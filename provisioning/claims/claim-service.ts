import type { Logger } from 'pino'
import {
  CLAIM_GRACE_DAYS,
  generateKeyPair,
  isClaimId,
  isDeviceId,
  issueClaimCertificate,
  privateKeyToPem,
  type Clock,
  type Random,
} from '../../certs/index.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { ClaimNotFound, ClaimOptionsInvalid, ClaimRevoked } from '../errors.ts'
import { GROUP_PATTERN } from '../settings/settings-service.ts'
import type { ClaimRecord, ClaimStore } from '../store/claim-store.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import { hashClaimToken } from './claim-checks.ts'

export interface NewClaim {
  group: string
  tier?: string
  maxUses?: number | null
  /** from the service's clock; default 7 days */
  expiresInMs?: number
  expiresAt?: Date
  idPattern?: string | null
  allowedIds?: readonly string[] | null
  /** how many one-time tokens to make (0: none required) */
  tokens?: number
}

/** A claim as the CLI shows it: no secrets. */
export type ClaimView = ClaimRecord

export interface CreatedClaim {
  claim: ClaimView
  certificatePem: string
  /** handed out once, never stored */
  privateKeyPem: string
  chainPem: string
  /** the one-time tokens, shown once (only their SHA-256 is stored) */
  tokens: string[]
}

/** An issued claim not yet registered: write its files, then commit() (as PreparedDevice). */
export interface PreparedClaim {
  created: CreatedClaim
  commit(): Promise<void>
}

export interface ClaimServiceDeps {
  store: RegistryStore
  claims: ClaimStore
  authority: Pick<DeviceAuthority, 'signingCa' | 'chainPem' | 'crlUrl'>
  clock: Clock
  random: Random
  log: Logger
}

export const DEFAULT_CLAIM_EXPIRY_MS = 7 * 86_400_000
/**
 * A claim needs a bound on how many devices it mints: max uses, one-time tokens or a list of allowed
 * ids. Given none of them (an id pattern alone bounds no count), it gets this many uses.
 */
export const DEFAULT_CLAIM_MAX_USES = 10
export const MAX_CLAIM_TOKENS = 100_000
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
const TOKEN_PREFIX = 'ght_'

export const claimActor = (claimId: string): string => `claim:${claimId}`

function randomBase32(random: Random, n: number): string {
  return [...random.bytes(n)].map((b) => BASE32[b & 31]).join('')
}

/** `<group slug>-<8 base32>`, or `clm-<10>` when the group gives no usable slug. */
export function newClaimId(group: string, random: Random): string {
  const slug = group
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24)
    .replace(/-+$/, '')
  const id = slug.length >= 2 ? `${slug}-${randomBase32(random, 8)}` : `clm-${randomBase32(random, 10)}`
  return isClaimId(id) ? id : `clm-${randomBase32(random, 10)}`
}

/** Max uses as asked, or DEFAULT_CLAIM_MAX_USES when nothing else bounds the claim (null: bounded by tokens or allowed ids). */
function maxUsesOf(req: NewClaim, tokens: number): number | null {
  if (req.maxUses != null) return req.maxUses
  return tokens > 0 || req.allowedIds != null ? null : DEFAULT_CLAIM_MAX_USES
}

function checkOptions(req: NewClaim, now: Date): { expiresAt: Date; tokens: number } {
  if (typeof req.group !== 'string' || !GROUP_PATTERN.test(req.group))
    throw new ClaimOptionsInvalid(`group '${String(req.group).slice(0, 80)}' (use 1-64 of A-Z a-z 0-9 . _ -)`)
  if (req.tier !== undefined && (typeof req.tier !== 'string' || !GROUP_PATTERN.test(req.tier)))
    throw new ClaimOptionsInvalid(`tier '${String(req.tier as unknown).slice(0, 80)}'`)
  if (req.maxUses != null && (!Number.isSafeInteger(req.maxUses) || req.maxUses < 1))
    throw new ClaimOptionsInvalid(`max uses ${String(req.maxUses)} (use a whole number >= 1)`)
  const tokens = req.tokens ?? 0
  if (!Number.isSafeInteger(tokens) || tokens < 0 || tokens > MAX_CLAIM_TOKENS)
    throw new ClaimOptionsInvalid(`tokens ${String(tokens)} (use 0 to ${MAX_CLAIM_TOKENS})`)
  if (req.idPattern != null) {
    try {
      new RegExp(`^(?:${req.idPattern})$`)
    } catch (err) {
      throw new ClaimOptionsInvalid(`id pattern: ${(err as Error).message}`, { cause: err })
    }
  }
  if (req.allowedIds != null) {
    const bad = req.allowedIds.filter((id) => !isDeviceId(id))
    if (bad.length)
      throw new ClaimOptionsInvalid(
        `allowed ids that are not device ids: ${bad
          .slice(0, 5)
          .map((id) => `'${String(id as unknown).slice(0, 40)}'`)
          .join(', ')}`,
      )
    if (req.allowedIds.length === 0) throw new ClaimOptionsInvalid('the list of allowed ids is empty')
  }
  if (req.expiresAt !== undefined && req.expiresInMs !== undefined)
    throw new ClaimOptionsInvalid('give an absolute or a relative expiry, not both')
  const expiresAt = req.expiresAt ?? new Date(now.getTime() + (req.expiresInMs ?? DEFAULT_CLAIM_EXPIRY_MS))
  if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= now.getTime())
    throw new ClaimOptionsInvalid(`expiry ${String(req.expiresAt ?? req.expiresInMs)} is not in the future`)
  return { expiresAt, tokens }
}

/**
 * Claims: created (the key pair made here, handed out once), listed and revoked by operators. The
 * requests devices make with a claim are answered by the enrollment service (provisioning/enrollment/).
 */
export function createClaimService(deps: ClaimServiceDeps, options: { defaultTier?: string } = {}) {
  const { store, claims, authority, clock, random, log } = deps
  const defaultTier = options.defaultTier ?? 'standard'

  async function require(id: string): Promise<ClaimRecord> {
    const claim = typeof id === 'string' ? await claims.get(id) : undefined
    if (!claim) throw new ClaimNotFound(String(id).slice(0, 80))
    return claim
  }

  return {
    /** Issues the claim certificate; nothing is registered until commit(). */
    async prepare(req: NewClaim, actor: string): Promise<PreparedClaim> {
      const now = clock.now()
      const { expiresAt, tokens: tokenCount } = checkOptions(req, now)
      let id = newClaimId(req.group, random)
      while (await claims.get(id)) id = newClaimId(req.group, random)
      const keys = await generateKeyPair('p256')
      const ca = await authority.signingCa()
      const crlUrl = await authority.crlUrl(ca)
      const cert = await issueClaimCertificate(
        ca.issuing,
        {
          claimId: id,
          publicKey: keys.publicKey,
          notAfter: new Date(expiresAt.getTime() + CLAIM_GRACE_DAYS * 86_400_000),
          ...(crlUrl && { crlUrl }),
        },
        { clock, random },
      )
      const tokens = Array.from({ length: tokenCount }, () => `${TOKEN_PREFIX}${Buffer.from(random.bytes(18)).toString('base64url')}`)
      const claim: ClaimRecord = {
        id,
        group: req.group,
        tier: req.tier ?? defaultTier,
        maxUses: maxUsesOf(req, tokenCount),
        uses: 0,
        expiresAt,
        idPattern: req.idPattern ?? null,
        allowedIds: req.allowedIds ? [...new Set(req.allowedIds)] : null,
        tokensRequired: tokenCount > 0,
        status: 'active',
        revokedAt: null,
        serial: cert.serial,
        fingerprint: cert.fingerprint,
        notAfter: cert.notAfter,
        certificatePem: cert.pem,
        createdAt: now,
        createdBy: actor,
      }
      const created: CreatedClaim = {
        claim,
        certificatePem: cert.pem,
        privateKeyPem: await privateKeyToPem(keys.privateKey),
        chainPem: authority.chainPem(),
        tokens,
      }
      return {
        created,
        commit: async () => {
          await store.transaction(async () => {
            await claims.insert(claim, tokens.map(hashClaimToken))
            await store.appendAudit({
              at: clock.now(),
              actor,
              action: 'claim.created',
              subject: claimActor(id),
              details: {
                group: claim.group,
                tier: claim.tier,
                maxUses: claim.maxUses,
                expiresAt: expiresAt.toISOString(),
                idPattern: claim.idPattern,
                allowedIds: claim.allowedIds?.length ?? null,
                tokens: tokenCount,
                serial: cert.serial,
              },
            })
          })
          log.info({ actor, claimId: id, serial: cert.serial, group: claim.group }, 'claim created')
        },
      }
    },

    async create(req: NewClaim, actor: string): Promise<CreatedClaim> {
      const prepared = await this.prepare(req, actor)
      await prepared.commit()
      return prepared.created
    },

    list: (): Promise<ClaimView[]> => claims.list(),
    get: (id: string): Promise<ClaimView> => require(id),
    /** The claim whose certificate has this fingerprint (the registry directory's lookupClaim). */
    getByFingerprint: (fingerprint: string): Promise<ClaimView | undefined> => claims.getByFingerprint(fingerprint),

    /** Permanent: its live sessions are closed (event claim.revoked) and its requests refused. */
    async revoke(id: string, actor: string): Promise<ClaimView> {
      const claim = await store.transaction(async () => {
        const current = await require(id)
        if (current.status === 'revoked') throw new ClaimRevoked(id)
        const at = clock.now()
        await claims.revoke(id, at)
        await store.appendAudit({
          at,
          actor,
          action: 'claim.revoked',
          subject: claimActor(id),
          details: { serial: current.serial, uses: current.uses },
        })
        await store.appendEvent('claim.revoked', { claimId: id }, at)
        return { ...current, status: 'revoked' as const, revokedAt: at }
      })
      log.info({ actor, claimId: id }, 'claim revoked')
      return claim
    },
  }
}

export type ClaimService = ReturnType<typeof createClaimService>
