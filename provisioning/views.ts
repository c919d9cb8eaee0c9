import type { CertificateRecord, DeviceRecord, Labels } from './store/registry-store.ts'

// The JSON shapes of registry records that operators (CLI --json) and apps (HTTP API) both see.

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

export function deviceView(d: DeviceRecord) {
  return {
    id: d.id,
    group: d.group,
    tier: d.tier,
    status: d.status,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  }
}

/** A device with its labels (the lifecycle routes and `device list|update --json`). */
export function labelledDeviceView(d: DeviceRecord, labels: Labels) {
  const { createdAt, updatedAt, ...rest } = deviceView(d)
  return { ...rest, labels, createdAt, updatedAt }
}

export function certificateView(c: CertificateRecord) {
  return {
    serial: c.serial,
    fingerprint: c.fingerprint,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    status: c.status,
    supersededAt: iso(c.supersededAt),
    revokedAt: iso(c.revokedAt),
    revocationReason: c.revocationReason,
  }
}
