import { isObject } from '../settings/json-document.ts'
import type { ClaimRecord } from '../store/claim-store.ts'
import { isSecretKey } from '../settings/secrets.ts'
import { finding, type Finding } from './finding.ts'
import type { FleetSnapshot } from './fleet-snapshot.ts'
import { looksLikeSecret } from './secret-detector.ts'

const DAY = 86_400_000

/** A claim provisioning for longer than this is treated as unbounded in time. */
const CLAIM_MAX_DAYS = 90

/**
 * Active claims without a bound: no use limit (no max uses, no tokens, no id list: only older claims) or
 * provisioning for more than 90 more days; and active claims past their expiry that were never revoked.
 */
export function claimBounds(s: FleetSnapshot): Finding[] {
  const active = s.claims.filter((c) => c.status === 'active')
  const revoke = (ids: string[]) => `gatehouse claim revoke ${ids[0]} (each claim)`
  const noUseLimit = (c: ClaimRecord) => c.maxUses === null && !c.tokensRequired && c.allowedIds === null
  const tooLong = (c: ClaimRecord) => c.expiresAt.getTime() - s.now.getTime() > CLAIM_MAX_DAYS * DAY
  return [
    ...finding(
      {
        id: 'claim-unbounded',
        severity: 'medium',
        title: `active claims without a use limit or provisioning for over ${CLAIM_MAX_DAYS} days`,
        kind: 'claim',
        fix: (ids) => `${revoke(ids)}, then gatehouse claim create --max-uses <n> --expires 7d`,
      },
      active.filter((c) => c.expiresAt > s.now && (noUseLimit(c) || tooLong(c))).map((c) => c.id),
    ),
    ...finding(
      { id: 'claim-expired-not-revoked', severity: 'low', title: 'claims past their expiry, not revoked', kind: 'claim', fix: revoke },
      active.filter((c) => c.expiresAt <= s.now).map((c) => c.id),
    ),
  ]
}

/** API keys (not revoked) that never expire, and keys never used a week after their creation. */
export function apiKeyHygiene(s: FleetSnapshot): Finding[] {
  const live = s.apiKeys.filter((k) => k.revokedAt === null && (k.expiresAt === null || k.expiresAt > s.now))
  const revoke = (ids: string[]) => `gatehouse apikey revoke ${ids[0]} (each key)`
  return [
    ...finding(
      {
        id: 'apikey-no-expiry',
        severity: 'medium',
        title: 'API keys that never expire',
        kind: 'api-key',
        fix: (ids) => `${revoke(ids)}, then gatehouse apikey create --expires 90d with the same name and scopes`,
      },
      live.filter((k) => k.expiresAt === null).map((k) => k.name),
    ),
    ...finding(
      { id: 'apikey-never-used', severity: 'low', title: 'API keys never used (7+ days old)', kind: 'api-key', fix: revoke },
      live.filter((k) => k.lastUsedAt === null && s.now.getTime() - k.createdAt.getTime() >= 7 * DAY).map((k) => k.name),
    ),
  ]
}

/** Settings values that look like a key, token or password under a name that is not sealed as a secret. */
export function plainSecrets(s: FleetSnapshot): Finding[] {
  const hits = s.settingsLayers.flatMap((l) => plainSecretPaths(l.document).map((path) => `${l.scope} ${path}`))
  return finding(
    {
      id: 'settings-secret-in-plain-name',
      severity: 'high',
      title: 'settings values that look like secrets, stored unsealed',
      kind: 'settings-layer',
      fix: (ids) => {
        const [scope = 'fleet', path = 'KEY'] = (ids[0] ?? '').split(' ')
        const target = scope === 'fleet' ? '--defaults' : `--${scope.replace(':', ' ')}`
        return `gatehouse settings unset ${path} ${target}, then set it again as ${path}_secret (sealed at rest, shown as [secret])`
      },
    },
    hits,
  )
}

/** Dotted paths of the suspicious values of a document; sealed keys (`*_secret`) are skipped. */
function plainSecretPaths(doc: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(doc).flatMap(([key, value]) => {
    if (isSecretKey(key)) return []
    const path = prefix + key
    if (isObject(value)) return plainSecretPaths(value, `${path}.`)
    return looksLikeSecret(key, value) ? [path] : []
  })
}
