import type { Logger } from 'pino'
import { createHistogram, observeHistogram, type Clock, type Histogram, type PeerIdentity } from '../certs/index.ts'
import { claimUnusable, type ClaimUnusable } from './claims/claim-checks.ts'
import { isDeviceEvent, type ChangeFeed, type ControlEvent } from './events.ts'
import type { APP_CLASSES, AppService } from './apps/app-service.ts'
import type { ClaimRecord } from './store/claim-store.ts'
import type { CertificateRecord, CredentialRecord, DeviceRecord, RegistryStore } from './store/registry-store.ts'

export type RefusalReason = 'unknown-device' | 'unknown-certificate' | 'revoked' | 'superseded' | 'disabled' | 'expired' | 'not-yet-valid'

export type DeviceLookup =
  /** validUntil: min(notAfter, supersededAt of a certificate superseded but still in its overlap) */
  | { kind: 'active'; deviceId: string; tier: string; group: string | null; serial: string; validUntil: Date }
  | { kind: 'refused'; reason: RefusalReason; deviceId: string | null; serial: string }

/** A claim certificate is a `claim` while its claim can provision; else refused with the reason (at CONNECT). */
export type ClaimLookup =
  | { kind: 'claim'; claimId: string; serial: string }
  | { kind: 'refused'; reason: 'unknown-claim' | ClaimUnusable; claimId: string | null; serial: string }

/** An app certificate (CN `app:<name>`) is an `app` while it and its app are active; what it may read comes with it. */
export type AppLookup =
  | { kind: 'app'; name: string; serial: string; groups: string[] | null; classes: (typeof APP_CLASSES)[number][] }
  | { kind: 'refused'; reason: 'unknown-app' | 'app-revoked'; name: string | null; serial: string }
/** A device by id alone (the broker's DeviceByIdLookup). */
export type DeviceByIdLookup =
  | { kind: 'active'; deviceId: string }
  | { kind: 'refused'; reason: 'unknown-device' | 'revoked' | 'disabled'; deviceId: string }

/**
 * What a lookup keeps of a certificate and its device: the fields judge() reads, times as epoch ms. Not the
 * records themselves: a CertificateRecord carries its PEM and seven dates (~1.5 KB with the device's), and the
 * cache holds an entry per connected device, which made it a large part of a connection's memory (issue 14).
 */
interface Entry {
  serial: string
  deviceId: string
  certStatus: CertificateRecord['status']
  deviceStatus: DeviceRecord['status']
  notBeforeMs: number
  notAfterMs: number
  /** null: not superseded, or superseded with no end of overlap (refused at once) */
  supersededAtMs: number | null
  tier: string
  group: string | null
}

function entryOf(credential: CredentialRecord): Entry {
  return {
    serial: credential.serial,
    deviceId: credential.deviceId,
    certStatus: credential.status,
    deviceStatus: credential.device.status,
    notBeforeMs: credential.notBefore.getTime(),
    notAfterMs: credential.notAfter.getTime(),
    supersededAtMs: credential.supersededAt?.getTime() ?? null,
    tier: credential.device.tier,
    group: credential.device.group,
  }
}

/**
 * The control plane's answer to the broker's one question (the broker's DeviceDirectory, matched
 * structurally so provisioning never imports broker/). Lookups are cached by certificate fingerprint
 * and every entry of a device is dropped on any event about it, so a connect costs at most one indexed
 * registry read (the certificate joined with its device: RegistryStore.getCredential) and a revoke is seen
 * as soon as the change feed delivers it. Each lookup first lets the feed catch up (feed.catchUp(): one
 * PRAGMA data_version, on PostgreSQL one read of the last event id, when nothing changed), so a connect sees
 * every change committed before it, by this process or another, never a stale cache entry. The registry reads are
 * async (PostgreSQL in cluster mode): a load that an event overtook while it read answers what it read but
 * caches nothing, so the event's change is read afresh by the next connect. Validity (expiry, end of a
 * renewal overlap) is judged on every lookup against the clock, never cached.
 */
export function createRegistryDirectory(
  deps: {
    store: RegistryStore
    feed: ChangeFeed
    clock: Clock
    log: Logger
    /** the claims (ClaimService or ClaimStore); without it every claim certificate is unknown */
    claims?: { getByFingerprint(fingerprint: string): Promise<ClaimRecord | undefined> }
    /** the apps (the AppService); without it every app certificate is unknown */
    apps?: Pick<AppService, 'record' | 'certificateByFingerprint'>
  },
  options: { maxEntries?: number; maxPendingAudits?: number } = {},
) {
  const { store, feed, clock, log } = deps
  /** seconds per lookup (the change feed's catch-up and the registry reads), for the metrics */
  const latency = { device: createHistogram(), claim: createHistogram() }
  const timed = async <T>(histogram: Histogram, run: () => T | Promise<T>): Promise<T> => {
    const started = clock.now().getTime()
    try {
      return await run()
    } finally {
      observeHistogram(histogram, (clock.now().getTime() - started) / 1000)
    }
  }
  const maxEntries = options.maxEntries ?? 100_000
  const cache = new Map<string, Entry>()
  const byDevice = new Map<string, Set<string>>()
  /** counts forget() calls: a load whose registry reads an event overtook caches nothing (it may hold what the event changed) */
  let forgets = 0
  /** the last audit write still under way: the next waits for it, so records land in the order the broker made them */
  let audited: Promise<void> | undefined
  /** audit writes not finished: a registry that stops answering (a database outage) must not grow the chain without end */
  const maxPendingAudits = options.maxPendingAudits ?? 10_000
  let pendingAudits = 0
  let droppedAudits = 0

  function forget(deviceId: string): void {
    forgets++
    for (const fp of byDevice.get(deviceId) ?? []) cache.delete(fp)
    byDevice.delete(deviceId)
  }

  feed.onEvent((event: ControlEvent) => {
    if (isDeviceEvent(event) && event.type !== 'settings.changed') forget(event.deviceId)
  })

  async function load(fingerprint: string): Promise<Entry | undefined> {
    const hit = cache.get(fingerprint)
    if (hit) return hit
    const before = forgets
    // the certificate and its device in one read (getCredential: one statement, so one snapshot of both)
    const credential = await store.getCredential(fingerprint)
    if (!credential) return undefined
    const entry = entryOf(credential)
    if (forgets !== before) return entry
    if (cache.size >= maxEntries) {
      cache.clear()
      byDevice.clear()
    }
    cache.set(fingerprint, entry)
    let set = byDevice.get(entry.deviceId)
    if (!set) {
      set = new Set()
      byDevice.set(entry.deviceId, set)
    }
    set.add(fingerprint)
    return entry
  }

  async function judge(identity: PeerIdentity): Promise<DeviceLookup> {
    const refuse = (reason: RefusalReason, deviceId = identity.deviceId): DeviceLookup => ({
      kind: 'refused',
      reason,
      deviceId,
      serial: identity.serial,
    })
    const entry = await load(identity.fingerprint)
    if (!entry || entry.serial !== identity.serial || entry.deviceId !== identity.deviceId) {
      const known = identity.deviceId !== null && (await store.getDevice(identity.deviceId)) !== undefined
      return refuse(known ? 'unknown-certificate' : 'unknown-device')
    }
    const now = clock.now().getTime()
    if (entry.deviceStatus === 'revoked' || entry.certStatus === 'revoked') return refuse('revoked')
    if (entry.deviceStatus === 'disabled') return refuse('disabled')
    const superseded = entry.certStatus === 'superseded'
    if (superseded && (entry.supersededAtMs === null || now >= entry.supersededAtMs)) return refuse('superseded')
    if (now > entry.notAfterMs) return refuse('expired')
    if (now < entry.notBeforeMs) return refuse('not-yet-valid')
    const overlapEnd = superseded && entry.supersededAtMs !== null ? entry.supersededAtMs : Number.POSITIVE_INFINITY
    const validUntil = new Date(Math.min(entry.notAfterMs, overlapEnd))
    return { kind: 'active', deviceId: entry.deviceId, tier: entry.tier, group: entry.group, serial: entry.serial, validUntil }
  }

  /**
   * Read on every claim CONNECT, not cached: its uses change with no event, and a claim session is a
   * rare connect (once per device), bounded like any other by the per-address connection limits.
   */
  async function judgeClaim(identity: PeerIdentity, claimId: string): Promise<ClaimLookup> {
    const claim = await deps.claims?.getByFingerprint(identity.fingerprint)
    if (claim === undefined || claim.id !== claimId || claim.serial !== identity.serial) {
      return { kind: 'refused', reason: 'unknown-claim', claimId, serial: identity.serial }
    }
    const unusable = claimUnusable(claim, clock.now())
    if (unusable !== null) return { kind: 'refused', reason: unusable, claimId, serial: identity.serial }
    return { kind: 'claim', claimId: claim.id, serial: claim.serial }
  }

  /**
   * Read on every app CONNECT, not cached (as claims): the certificate must be an active certificate of
   * app `name`, by fingerprint and serial (so issued by this CA: the TLS handshake checked the chain), and
   * the app active. Its certificate's validity the broker has checked against its own clock.
   */
  async function judgeApp(identity: PeerIdentity, name: string): Promise<AppLookup> {
    const refuse = (reason: 'unknown-app' | 'app-revoked'): AppLookup => ({ kind: 'refused', reason, name, serial: identity.serial })
    const cert = await deps.apps?.certificateByFingerprint(identity.fingerprint)
    if (!cert || cert.serial !== identity.serial || cert.appName !== name) return refuse('unknown-app')
    const app = await deps.apps?.record(name)
    if (!app) return refuse('unknown-app')
    if (app.status === 'revoked' || cert.status === 'revoked') return refuse('app-revoked')
    return { kind: 'app', name, serial: cert.serial, groups: app.groups, classes: app.classes as (typeof APP_CLASSES)[number][] }
  }

  return {
    async lookupApp(identity: PeerIdentity, name: string): Promise<AppLookup> {
      await feed.catchUp()
      return judgeApp(identity, name)
    },
    async lookup(identity: PeerIdentity): Promise<DeviceLookup> {
      return timed(latency.device, async () => {
        await feed.catchUp()
        return judge(identity)
      })
    },
    /** Not cached: asked only for what a device left behind (a dead node's wills), never per CONNECT. */
    async lookupDeviceById(deviceId: string): Promise<DeviceByIdLookup> {
      await feed.catchUp()
      const device = await store.getDevice(deviceId)
      if (device === undefined) return { kind: 'refused', reason: 'unknown-device', deviceId }
      if (device.status !== 'active') return { kind: 'refused', reason: device.status, deviceId }
      return { kind: 'active', deviceId }
    },
    async lookupClaim(identity: PeerIdentity, claimId: string): Promise<ClaimLookup> {
      return timed(latency.claim, async () => {
        await feed.catchUp()
        return judgeClaim(identity, claimId)
      })
    },
    latency,
    /** audit records dropped over maxPendingAudits since start (gatehouse_audit_dropped_total) */
    auditsDropped: (): number => droppedAudits,
    onEvent: (listener: (event: ControlEvent) => void): (() => void) => feed.onEvent(listener),
    audit(record: { actor: string; action: string; subject: string; details?: Record<string, unknown> }): void {
      // fire and log: the broker's path never waits for an audit row (a failure is counted by the store). One
      // after another (the first at once): on PostgreSQL two lone writes take two connections and may commit in either order
      // Past maxPendingAudits writes still waiting, a record is dropped: counted, and logged at the first drop
      // and every 1,000th after it (never silently)
      if (pendingAudits >= maxPendingAudits) {
        droppedAudits++
        if (droppedAudits % 1000 === 1)
          log.error(
            { action: record.action, subject: record.subject, dropped: droppedAudits, maxPendingAudits, code: 'GH_STORE_WRITE_FAILED' },
            'audit record dropped: the registry has not finished the audit writes before it',
          )
        return
      }
      pendingAudits++
      const entry = { at: clock.now(), actor: record.actor, action: record.action, subject: record.subject, details: record.details ?? {} }
      const write = () =>
        store.appendAudit(entry).then(
          () => {},
          (err: unknown) => log.error({ err, action: record.action }, 'audit write failed'),
        )
      const next = (audited === undefined ? write() : audited.then(write)).finally(() => {
        pendingAudits--
      })
      audited = next
      void next.then(() => {
        if (audited === next) audited = undefined
      })
    },
  }
}

export type RegistryDirectory = ReturnType<typeof createRegistryDirectory>
