import { describe, expect, it } from 'vitest'
import type { FleetSnapshot, SnapshotDevice } from '../../../../provisioning/checks/fleet-snapshot.ts'
import { DEFAULT_CHECK_OPTIONS, failsAt, runChecks } from '../../../../provisioning/checks/run-checks.ts'
import type { ApiKeyRecord } from '../../../../provisioning/store/api-key-store.ts'
import type { ClaimRecord } from '../../../../provisioning/store/claim-store.ts'

const NOW = new Date('2026-06-01T00:00:00Z')
const days = (n: number) => new Date(NOW.getTime() + n * 86_400_000)

const device = (id: string, over: Partial<SnapshotDevice> = {}): SnapshotDevice => ({
  id,
  status: 'active',
  createdAt: days(-100),
  lastSeen: days(-1),
  certificate: { serial: `s-${id}`, notAfter: days(200), spkiSha256: `key-${id}` },
  ...over,
})

/** A healthy fleet: every check passes on it. */
const healthy = (): FleetSnapshot => ({
  now: NOW,
  devices: [device('pump-1'), device('pump-2')],
  caCertificates: [
    { role: 'root', serial: 'r1', subject: 'CN=root', notAfter: days(3000) },
    { role: 'issuing', serial: 'i1', subject: 'CN=issuing', notAfter: days(700) },
  ],
  keyFiles: [{ path: '/d/ca/root.key', encrypted: true }],
  privatePaths: [
    { path: '/d', mode: 0o700 },
    { path: '/d/gatehouse.db', mode: 0o600 },
  ],
  crls: [{ issuerSerial: 'i1', nextUpdate: days(5) }],
  limitHits: [],
  claims: [],
  apiKeys: [],
  settingsLayers: [{ scope: 'fleet', document: { interval: 30, wifi_secret: { $enc: 'v1:abc' }, name: 'Pump station north' } }],
})

const claim = (id: string, over: Partial<ClaimRecord> = {}): ClaimRecord => ({
  id,
  group: 'g',
  tier: 'standard',
  maxUses: 10,
  uses: 0,
  expiresAt: days(7),
  idPattern: null,
  allowedIds: null,
  tokensRequired: false,
  status: 'active',
  revokedAt: null,
  serial: `c-${id}`,
  fingerprint: `f-${id}`,
  notAfter: days(37),
  certificatePem: null,
  createdAt: days(-1),
  createdBy: 'op',
  ...over,
})

const apiKey = (name: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: `id${name}`,
  name,
  secretHash: 'h',
  scopes: ['devices:read'],
  createdAt: days(-30),
  expiresAt: days(60),
  lastUsedAt: days(-1),
  revokedAt: null,
  previousSecretHash: null,
  previousSecretUntil: null,
  ...over,
})

/** [case, change to the healthy fleet, the finding expected (id, severity, ids)] */
const cases: [string, (s: FleetSnapshot) => void, { id: string; severity: string; ids: string[] }][] = [
  [
    'certificate expired',
    (s) => (s.devices[0]!.certificate!.notAfter = days(-1)),
    { id: 'certificate-expired', severity: 'critical', ids: ['pump-1'] },
  ],
  [
    'certificate within 7 days',
    (s) => (s.devices[0]!.certificate!.notAfter = days(3)),
    { id: 'certificate-expiring-7d', severity: 'high', ids: ['pump-1'] },
  ],
  [
    'certificate within 30 days',
    (s) => (s.devices[1]!.certificate!.notAfter = days(20)),
    { id: 'certificate-expiring-30d', severity: 'medium', ids: ['pump-2'] },
  ],
  [
    'issuing CA within 30 days',
    (s) => (s.caCertificates[1]!.notAfter = days(20)),
    { id: 'ca-issuing-expiring', severity: 'high', ids: ['i1'] },
  ],
  [
    'root CA within 7 days',
    (s) => (s.caCertificates[0]!.notAfter = days(5)),
    { id: 'ca-root-expiring', severity: 'critical', ids: ['r1'] },
  ],
  [
    'shared public key',
    (s) => (s.devices[1]!.certificate!.spkiSha256 = 'key-pump-1'),
    { id: 'public-key-shared', severity: 'high', ids: ['pump-1', 'pump-2'] },
  ],
  ['never seen', (s) => (s.devices[0]!.lastSeen = null), { id: 'device-never-seen', severity: 'low', ids: ['pump-1'] }],
  ['silent for 30 days', (s) => (s.devices[1]!.lastSeen = days(-31)), { id: 'device-silent', severity: 'low', ids: ['pump-2'] }],
  [
    'over limits 3 times',
    (s) =>
      (s.limitHits = ['device.throttled', 'connect.refused', 'publish.refused'].map((action) => ({
        deviceId: 'pump-1',
        action,
        at: days(-1),
      }))),
    { id: 'device-over-limits', severity: 'medium', ids: ['pump-1'] },
  ],
  [
    'claim without max uses',
    (s) => (s.claims = [claim('open', { maxUses: null })]),
    { id: 'claim-unbounded', severity: 'medium', ids: ['open'] },
  ],
  [
    'claim for a year',
    (s) => (s.claims = [claim('long', { expiresAt: days(365) })]),
    { id: 'claim-unbounded', severity: 'medium', ids: ['long'] },
  ],
  [
    'claim past expiry',
    (s) => (s.claims = [claim('old', { expiresAt: days(-2) })]),
    { id: 'claim-expired-not-revoked', severity: 'low', ids: ['old'] },
  ],
  [
    'API key without expiry',
    (s) => (s.apiKeys = [apiKey('forever', { expiresAt: null })]),
    { id: 'apikey-no-expiry', severity: 'medium', ids: ['forever'] },
  ],
  [
    'API key never used',
    (s) => (s.apiKeys = [apiKey('idle', { lastUsedAt: null })]),
    { id: 'apikey-never-used', severity: 'low', ids: ['idle'] },
  ],
  [
    'a PEM key under a plain name',
    (s) => (s.settingsLayers = [{ scope: 'group:pumps', document: { tls: { key: '-----BEGIN PRIVATE KEY-----\nMIG...' } } }]),
    { id: 'settings-secret-in-plain-name', severity: 'high', ids: ['group:pumps tls.key'] },
  ],
  [
    'a token with a known prefix',
    (s) => (s.settingsLayers = [{ scope: 'device:pump-1', document: { upstream: 'sk-abc123def456' } }]),
    { id: 'settings-secret-in-plain-name', severity: 'high', ids: ['device:pump-1 upstream'] },
  ],
  [
    'a high-entropy value',
    (s) => (s.settingsLayers = [{ scope: 'fleet', document: { cloud: 'q8Zr2LmX7vKp4NwT9bYc3HdF' } }]),
    { id: 'settings-secret-in-plain-name', severity: 'high', ids: ['fleet cloud'] },
  ],
  [
    'a password under its name',
    (s) => (s.settingsLayers = [{ scope: 'fleet', document: { mqtt_password: 'hunter22' } }]),
    { id: 'settings-secret-in-plain-name', severity: 'high', ids: ['fleet mqtt_password'] },
  ],
  [
    'an unencrypted CA key',
    (s) => s.keyFiles.push({ path: '/d/ca/issuing.key', encrypted: false }),
    { id: 'ca-key-unencrypted', severity: 'high', ids: ['/d/ca/issuing.key'] },
  ],
  [
    'a world-readable registry',
    (s) => (s.privatePaths[1]!.mode = 0o644),
    { id: 'data-dir-file-modes', severity: 'high', ids: ['/d/gatehouse.db'] },
  ],
  ['a CRL past nextUpdate', (s) => (s.crls[0]!.nextUpdate = days(-1)), { id: 'crl-stale', severity: 'high', ids: ['i1'] }],
  ['a CRL near nextUpdate', (s) => (s.crls[0]!.nextUpdate = days(0.5)), { id: 'crl-stale', severity: 'medium', ids: ['i1'] }],
]

describe('runChecks', () => {
  it('finds nothing on a healthy fleet', () => {
    expect(runChecks(healthy())).toMatchObject({ findings: [], counts: { info: 0, low: 0, medium: 0, high: 0, critical: 0 } })
  })

  it.each(cases.map(([name, change, want]) => [`fail/${name}`, change, want] as const))('%s', (_name, change, want) => {
    const s = healthy()
    change(s)
    const report = runChecks(s)
    expect(report.findings).toEqual([
      expect.objectContaining({
        id: want.id,
        severity: want.severity,
        objects: expect.objectContaining({ ids: want.ids, count: want.ids.length }),
      }),
    ])
    expect(report.findings[0]!.fix).toMatch(/gatehouse |openssl |chmod /)
  })

  it('leaves revoked devices, revoked claims and keys, sealed secrets and young never-seen devices alone', () => {
    const s = healthy()
    s.devices.push(
      device('gone', { status: 'revoked', lastSeen: null, certificate: { serial: 'x', notAfter: days(1), spkiSha256: 'key-pump-1' } }),
    )
    s.devices.push(device('new', { createdAt: days(-0.5), lastSeen: null }))
    s.limitHits = [0, 1, 2].map(() => ({ deviceId: 'gone', action: 'connect.refused', at: days(-1) }))
    s.claims = [
      claim('done', { maxUses: null, status: 'revoked', revokedAt: days(-1) }),
      claim('tokens', { maxUses: null, tokensRequired: true }),
    ]
    s.apiKeys = [apiKey('old', { expiresAt: null, lastUsedAt: null, revokedAt: days(-1) })]
    s.settingsLayers = [{ scope: 'fleet', document: { apiSecret: 'sk-abc123def456', description: 'the north pump station, level 2' } }]
    expect(runChecks(s).findings).toEqual([])
  })

  it('caps the listed ids at 20 with the full count, and orders findings worst first', () => {
    const s = healthy()
    s.devices = Array.from({ length: 25 }, (_, i) => device(`d-${String(i).padStart(2, '0')}`, { lastSeen: null }))
    s.keyFiles.push({ path: '/d/ca/root2.key', encrypted: false })
    const report = runChecks(s)
    expect(report.findings.map((f) => f.id)).toEqual(['ca-key-unencrypted', 'device-never-seen'])
    expect(report.findings[1]!.objects).toMatchObject({ count: 25, ids: expect.arrayContaining(['d-00', 'd-19']) })
    expect(report.findings[1]!.objects.ids).toHaveLength(20)
  })

  it('honours silentDays, and fails at or above a severity', () => {
    const s = healthy()
    s.devices[0]!.lastSeen = days(-10)
    expect(runChecks(s).findings).toEqual([])
    const report = runChecks(s, { ...DEFAULT_CHECK_OPTIONS, silentDays: 7 })
    expect(report.findings.map((f) => f.id)).toEqual(['device-silent'])
    expect(failsAt(report, 'low')).toBe(true)
    expect(failsAt(report, 'medium')).toBe(false)
  })
})
