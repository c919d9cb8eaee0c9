import type { Logger } from 'pino'
import type { Clock, Random } from '../../certs/index.ts'
import {
  ApiKeyExists,
  ApiKeyExpiryInvalid,
  ApiKeyInvalid,
  ApiKeyNameInvalid,
  ApiKeyNotFound,
  ApiKeyOverlapInvalid,
  ApiKeyRevoked,
  ApiKeyScopeEscalation,
  ApiKeyScopeInvalid,
} from '../errors.ts'
import type { ApiKeyRecord, ApiKeyStore } from '../store/api-key-store.ts'
import type { DashboardSessionStore } from '../store/dashboard-session-store.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import { digestsEqual, formatApiKey, hashSecret, newApiKeyId, newApiKeySecret, parseApiKey } from './api-key-token.ts'
import { API_SCOPES, isApiScope, type ApiScope } from './scopes.ts'

/** What anyone but the store sees of a key: never its hash. */
export interface ApiKey {
  id: string
  name: string
  scopes: ApiScope[]
  createdAt: Date
  expiresAt: Date | null
  lastUsedAt: Date | null
  revokedAt: Date | null
  /** after a rotation: until when the previous secret still works (null: it does not, or there was none) */
  previousSecretUntil: Date | null
}

export interface NewApiKey {
  name: string
  /** unknown scopes are refused (GH_API_KEY_SCOPE_INVALID); duplicates are dropped */
  scopes: readonly string[]
  /** an absolute expiry; must be in the future */
  expiresAt?: Date
  /** or a relative one, from the service's clock (`--expires 30d`) */
  expiresInMs?: number
}

export interface ApiKeyServiceDeps {
  /** for transaction() and appendAudit() */
  store: RegistryStore
  apiKeys: ApiKeyStore
  /** the dashboard's sessions: a revoked key's end with it, in the same transaction (every worker and node) */
  dashboardSessions?: Pick<DashboardSessionStore, 'removeForKey'>
  clock: Clock
  random: Random
  log: Logger
}

/**
 * Who asks, for the no-escalation rule: the scopes of the API key making the request. A key can create,
 * rotate or revoke only keys whose scopes it holds itself (rotating hands out the key's secret). The
 * operator CLI passes no caller: it holds the data directory, so every scope.
 */
export interface ApiKeyCaller {
  actor: string
  scopes?: readonly string[]
}

/** A rotation's overlap, in seconds: how long the previous secret keeps working beside the new one. */
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 86_400
export const MAX_ROTATION_OVERLAP_SECONDS = 30 * 86_400

export const API_KEY_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
/** last_used_at is written at most this often per key, not on every request */
export const LAST_USED_RESOLUTION_MS = 60_000
/** compared against when the id is unknown, so an unknown id costs the same as a wrong secret */
const DUMMY_HASH = hashSecret('gatehouse-no-such-key')

export const apiKeyActor = (key: Pick<ApiKey, 'name'>): string => `apikey:${key.name}`

function publicView(r: ApiKeyRecord): ApiKey {
  return {
    id: r.id,
    name: r.name,
    scopes: r.scopes.filter(isApiScope),
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    lastUsedAt: r.lastUsedAt,
    revokedAt: r.revokedAt,
    previousSecretUntil: r.previousSecretUntil,
  }
}

/** GH_API_KEY_SCOPE_ESCALATION unless the caller (an API key) holds every one of these scopes. */
function assertHolds(caller: ApiKeyCaller, scopes: readonly string[]): void {
  if (caller.scopes === undefined) return
  const missing = scopes.filter((s) => !caller.scopes?.includes(s))
  if (missing.length) throw new ApiKeyScopeEscalation(missing.join(', '))
}

function checkOverlap(seconds: number): number {
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_ROTATION_OVERLAP_SECONDS)
    throw new ApiKeyOverlapInvalid(String(seconds).slice(0, 40), String(MAX_ROTATION_OVERLAP_SECONDS))
  return seconds
}

function checkScopes(scopes: readonly string[]): ApiScope[] {
  const unknown = scopes.filter((s) => !isApiScope(s))
  if (unknown.length)
    throw new ApiKeyScopeInvalid(`unknown ${unknown.map((s) => `'${String(s).slice(0, 40)}'`).join(', ')}`, API_SCOPES.join(', '))
  if (scopes.length === 0) throw new ApiKeyScopeInvalid('none given', API_SCOPES.join(', '))
  return API_SCOPES.filter((s) => scopes.includes(s))
}

/**
 * API keys for apps: created and revoked by operators (audited, the key itself never stored or logged),
 * verified on every HTTP request. Verification reads the store each time, so a revocation applies to
 * the next request, in any process that shares the registry.
 */
export function createApiKeyService(deps: ApiKeyServiceDeps) {
  const { store, apiKeys, clock, random, log } = deps

  function expiryOf(req: NewApiKey, now: Date): Date | null {
    if (req.expiresAt !== undefined && req.expiresInMs !== undefined)
      throw new ApiKeyExpiryInvalid('give an absolute or a relative expiry, not both')
    const at = req.expiresInMs !== undefined ? new Date(now.getTime() + req.expiresInMs) : (req.expiresAt ?? null)
    if (at === null) return null
    if (Number.isNaN(at.getTime())) throw new ApiKeyExpiryInvalid('not a date')
    if (at.getTime() <= now.getTime()) throw new ApiKeyExpiryInvalid(`${at.toISOString()} is not in the future`)
    return at
  }

  return {
    /** Creates a key. The returned token is the only copy: show it once and forget it. */
    async create(req: NewApiKey, caller: string | ApiKeyCaller): Promise<{ token: string; key: ApiKey }> {
      const { actor } = callerOf(caller)
      if (typeof req.name !== 'string' || !API_KEY_NAME_PATTERN.test(req.name)) throw new ApiKeyNameInvalid(String(req.name).slice(0, 80))
      const scopes = checkScopes(req.scopes)
      assertHolds(callerOf(caller), scopes)
      const now = clock.now()
      const expiresAt = expiryOf(req, now)
      const secret = newApiKeySecret(random)
      const record = await store.transaction(async () => {
        if (await apiKeys.getByName(req.name)) throw new ApiKeyExists(req.name)
        let id = newApiKeyId(random)
        while (await apiKeys.getById(id)) id = newApiKeyId(random)
        const rec: ApiKeyRecord = {
          id,
          name: req.name,
          secretHash: hashSecret(secret),
          scopes,
          createdAt: now,
          expiresAt,
          lastUsedAt: null,
          revokedAt: null,
          previousSecretHash: null,
          previousSecretUntil: null,
        }
        await apiKeys.insert(rec)
        await store.appendAudit({
          at: now,
          actor,
          action: 'apikey.created',
          subject: `apikey:${req.name}`,
          details: { id, scopes, expiresAt: expiresAt?.toISOString() ?? null },
        })
        return rec
      })
      log.info({ actor, apiKeyId: record.id, name: record.name, scopes }, 'api key created')
      return { token: formatApiKey(record.id, secret), key: publicView(record) }
    },

    /**
     * The key a token stands for, or GH_API_KEY_INVALID, the same error for a malformed, unknown, wrong,
     * revoked or expired key. The secret is compared as SHA-256 digests with timingSafeEqual, and an
     * unknown id is compared against a dummy digest, so timing does not tell which case it was.
     */
    async verify(token: string): Promise<ApiKey> {
      const parsed = typeof token === 'string' ? parseApiKey(token) : undefined
      const record = parsed ? await apiKeys.getById(parsed.id) : undefined
      const presented = hashSecret(parsed?.secret ?? '')
      const now = clock.now()
      // both compared every time, so timing does not tell a current secret from a previous one
      const current = digestsEqual(presented, record?.secretHash ?? DUMMY_HASH)
      const previous = digestsEqual(presented, record?.previousSecretHash ?? DUMMY_HASH)
      const previousLive = record?.previousSecretHash != null && (record.previousSecretUntil?.getTime() ?? 0) > now.getTime()
      const matches = current || (previous && previousLive)
      const live =
        record !== undefined && record.revokedAt === null && (record.expiresAt === null || record.expiresAt.getTime() > now.getTime())
      if (!parsed || !record || !matches || !live) throw new ApiKeyInvalid()
      if (record.lastUsedAt === null || now.getTime() - record.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS) {
        try {
          await store.transaction(() => apiKeys.touchLastUsed(record.id, now))
          record.lastUsedAt = now
        } catch (err) {
          // bookkeeping only: a busy or full disk must not turn a valid request away
          log.warn({ err, apiKeyId: record.id }, 'api key last-used time not recorded')
        }
      }
      return publicView(record)
    },

    async list(): Promise<ApiKey[]> {
      return (await apiKeys.list()).map(publicView)
    },

    async get(name: string): Promise<ApiKey | undefined> {
      const record = await apiKeys.getByName(name)
      return record && publicView(record)
    },

    /** Permanent. Applies to the next request that presents the key (its previous secret too). */
    async revoke(name: string, caller: string | ApiKeyCaller): Promise<ApiKey> {
      const { actor } = callerOf(caller)
      const record = await store.transaction(async () => {
        const current = await apiKeys.getByName(name)
        if (!current) throw new ApiKeyNotFound(String(name).slice(0, 80))
        assertHolds(callerOf(caller), current.scopes)
        if (current.revokedAt !== null) throw new ApiKeyRevoked(name)
        const at = clock.now()
        await apiKeys.revoke(current.id, at)
        await deps.dashboardSessions?.removeForKey(current.id)
        await store.appendAudit({ at, actor, action: 'apikey.revoked', subject: `apikey:${name}`, details: { id: current.id } })
        return { ...current, revokedAt: at }
      })
      log.info({ actor, apiKeyId: record.id, name }, 'api key revoked')
      return publicView(record)
    },

    /**
     * A new secret under the same name and id; the current secret keeps working for overlapSeconds
     * (default a day, at most 30 days; 0: refused at once), then never again. A previous secret still in
     * its overlap from an earlier rotation is dropped. The new token is the only copy, as on create.
     */
    async rotate(name: string, req: { overlapSeconds?: number }, caller: string | ApiKeyCaller): Promise<{ token: string; key: ApiKey }> {
      const { actor } = callerOf(caller)
      const overlap = checkOverlap(req.overlapSeconds ?? DEFAULT_ROTATION_OVERLAP_SECONDS)
      const secret = newApiKeySecret(random)
      const record = await store.transaction(async () => {
        const current = await apiKeys.getByName(name)
        if (!current) throw new ApiKeyNotFound(String(name).slice(0, 80))
        assertHolds(callerOf(caller), current.scopes)
        if (current.revokedAt !== null) throw new ApiKeyRevoked(name)
        const at = clock.now()
        const until = new Date(at.getTime() + overlap * 1000)
        const secretHash = hashSecret(secret)
        await apiKeys.rotate(current.id, secretHash, current.secretHash, until)
        await store.appendAudit({
          at,
          actor,
          action: 'apikey.rotated',
          subject: `apikey:${name}`,
          details: { id: current.id, overlapSeconds: overlap, previousSecretUntil: until.toISOString() },
        })
        return { ...current, secretHash, previousSecretHash: current.secretHash, previousSecretUntil: until }
      })
      log.info({ actor, apiKeyId: record.id, name, overlapSeconds: overlap }, 'api key rotated')
      return { token: formatApiKey(record.id, secret), key: publicView(record) }
    },
  }
}

const callerOf = (caller: string | ApiKeyCaller): ApiKeyCaller => (typeof caller === 'string' ? { actor: caller } : caller)

export type ApiKeyService = ReturnType<typeof createApiKeyService>
