import { finding, type Finding } from './finding.ts'
import type { FleetSnapshot } from './fleet-snapshot.ts'

const DAY = 86_400_000
const daysLeft = (s: FleetSnapshot, at: Date) => (at.getTime() - s.now.getTime()) / DAY
const live = (s: FleetSnapshot) => s.devices.filter((d) => d.status !== 'revoked')

/** Device certificates (the current one of each device not revoked) ending within 7, then 30 days. */
export function certificateExpiry(s: FleetSnapshot): Finding[] {
  const within = (lo: number, hi: number) =>
    live(s)
      .filter((d) => d.certificate && daysLeft(s, d.certificate.notAfter) >= lo && daysLeft(s, d.certificate.notAfter) < hi)
      .map((d) => d.id)
  const renew = (ids: string[]) =>
    `gatehouse device renew ${ids[0]} (each device; devices renew themselves over MQTT in their renewal window)`
  return [
    ...finding(
      { id: 'certificate-expired', severity: 'critical', title: 'device certificates expired', kind: 'device', fix: renew },
      within(-Infinity, 0),
    ),
    ...finding(
      { id: 'certificate-expiring-7d', severity: 'high', title: 'device certificates expire within 7 days', kind: 'device', fix: renew },
      within(0, 7),
    ),
    ...finding(
      {
        id: 'certificate-expiring-30d',
        severity: 'medium',
        title: 'device certificates expire within 30 days',
        kind: 'device',
        fix: renew,
      },
      within(7, 30),
    ),
  ]
}

/** The root or an issuing CA ending within 30 days (critical within 7). */
export function caExpiry(s: FleetSnapshot): Finding[] {
  return (['root', 'issuing'] as const).flatMap((role) => {
    const soon = s.caCertificates.filter((c) => c.role === role && daysLeft(s, c.notAfter) < 30)
    const fix = () =>
      role === 'issuing'
        ? 'gatehouse ca rotate (a new issuing CA; devices renew onto it)'
        : 'gatehouse ca show; the root cannot be rotated in place: initialise a new data directory and re-provision the fleet before it ends'
    return finding(
      {
        id: `ca-${role}-expiring`,
        severity: soon.some((c) => daysLeft(s, c.notAfter) < 7) ? 'critical' : 'high',
        title: `the ${role} CA expires within 30 days`,
        kind: 'ca-certificate',
        fix,
      },
      soon.map((c) => c.serial),
    )
  })
}

/** One public key in the current certificates of several devices: one stolen key speaks for all of them. */
export function sharedKeys(s: FleetSnapshot): Finding[] {
  const byKey = new Map<string, string[]>()
  for (const d of live(s)) if (d.certificate) byKey.set(d.certificate.spkiSha256, [...(byKey.get(d.certificate.spkiSha256) ?? []), d.id])
  const shared = [...byKey.values()].filter((ids) => ids.length > 1).flat()
  return finding(
    {
      id: 'public-key-shared',
      severity: 'high',
      title: 'devices share a public key',
      kind: 'device',
      fix: (ids) => `gatehouse device renew ${ids[0]} (each device, with a key of its own: without --csr, or a CSR from a new key)`,
    },
    shared,
  )
}

/** A stored CRL past its nextUpdate, or within a day of it (a running Gatehouse reissues it half-way). */
export function staleCrls(s: FleetSnapshot): Finding[] {
  const stale = s.crls.filter((c) => daysLeft(s, c.nextUpdate) < 1)
  return finding(
    {
      id: 'crl-stale',
      severity: stale.some((c) => daysLeft(s, c.nextUpdate) < 0) ? 'high' : 'medium',
      title: 'CRLs past or near their nextUpdate',
      kind: 'crl',
      fix: () =>
        'gatehouse crl --out crl.pem (reissues a stale CRL; a running gatehouse start keeps them fresh), then publish it to relying parties',
    },
    stale.map((c) => c.issuerSerial),
  )
}
