import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { publicKeySha256, type Clock } from '../../certs/index.ts'
import { describeCa, isKeyReference, storedCrlNextUpdate } from '../ca/index.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import type { ApiKeyStore } from '../store/api-key-store.ts'
import type { ClaimStore } from '../store/claim-store.ts'
import type { DeviceRecord, RegistryStore } from '../store/registry-store.ts'
import type { SettingsStore } from '../store/settings-store.ts'
import type { FleetSnapshot, SnapshotDevice } from './fleet-snapshot.ts'

export interface SnapshotStores {
  registry: RegistryStore
  claims: Pick<ClaimStore, 'list'>
  apiKeys: Pick<ApiKeyStore, 'list'>
  settings: Pick<SettingsStore, 'listLayers'>
}

/** Audit actions that count as a device hitting a limit or being refused. */
export const LIMIT_ACTIONS = ['device.throttled', 'connect.refused', 'publish.refused', 'subscribe.refused'] as const
/** the most audit rows read per action */
const MAX_AUDIT_ROWS = 10_000

/** Reads what the fleet checks need from a data directory: its registry (through the stores) and its files. */
export async function readFleetSnapshot(
  dataDir: string,
  stores: SnapshotStores,
  deps: { clock: Clock },
  options: { lookbackDays: number },
): Promise<FleetSnapshot> {
  const now = deps.clock.now()
  const layout = dataDirLayout(dataDir)
  const ca = await describeCa(dataDir, { clock: deps.clock })
  const issuers = [ca.issuing, ...ca.previous.filter((p) => p.status === 'valid')]
  const since = now.getTime() - options.lookbackDays * 86_400_000
  return {
    now,
    devices: await readDevices(stores.registry),
    caCertificates: [{ role: 'root' as const, ...ca.root }, ...issuers.map((c) => ({ role: 'issuing' as const, ...c }))].map((c) => ({
      role: c.role,
      serial: c.serial,
      subject: c.subject,
      notAfter: new Date(c.notAfter),
    })),
    // a file naming a key in a PKCS#11 token holds no key: nothing to encrypt
    keyFiles: keyPaths(layout)
      .map((path) => ({ path, text: readFileSync(path, 'utf8') }))
      .filter((k) => !isKeyReference(k.text))
      .map((k) => ({ path: k.path, encrypted: k.text.includes('ENCRYPTED') })),
    privatePaths: privatePaths(layout),
    crls: (
      await Promise.all(
        issuers.map(async (i) => {
          const nextUpdate = await storedCrlNextUpdate(stores.registry, i.serial)
          return nextUpdate ? [{ issuerSerial: i.serial, nextUpdate }] : []
        }),
      )
    ).flat(),
    limitHits: (
      await Promise.all(
        LIMIT_ACTIONS.map(async (action) =>
          (
            await stores.registry.listAudit({ action, limit: MAX_AUDIT_ROWS })
          )
            .filter((e) => e.at.getTime() >= since)
            .map((e) => ({ deviceId: e.subject, action, at: e.at })),
        ),
      )
    ).flat(),
    claims: await stores.claims.list(),
    apiKeys: await stores.apiKeys.list(),
    settingsLayers: (await stores.settings.listLayers()).map((l) => ({ scope: l.scope, document: l.document })),
  }
}

/** one device at a time: a fleet of any size holds one certificate read open, not one per device */
async function readDevices(registry: RegistryStore): Promise<SnapshotDevice[]> {
  const seen = new Map((await registry.listLastSeen()).map((s) => [s.deviceId, s.at]))
  const devices: SnapshotDevice[] = []
  for (const d of await registry.listDevices()) {
    devices.push({
      id: d.id,
      status: d.status,
      createdAt: d.createdAt,
      lastSeen: seen.get(d.id) ?? null,
      certificate: await currentCertificate(registry, d),
    })
  }
  return devices
}

async function currentCertificate(registry: RegistryStore, device: DeviceRecord): Promise<SnapshotDevice['certificate']> {
  const [newest] = (await registry.listCertificates(device.id))
    .filter((c) => c.status === 'active')
    .sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime())
  if (!newest) return null
  return { serial: newest.serial, notAfter: newest.notAfter, spkiSha256: publicKeySha256(newest.pem) }
}

type Layout = ReturnType<typeof dataDirLayout>

/** The CA's keys (current and previous issuing CAs) and the server's key. */
function keyPaths(layout: Layout): string[] {
  const previous = existsSync(layout.previousDir)
    ? readdirSync(layout.previousDir).map((s) => join(layout.previousDir, s, 'issuing.key'))
    : []
  return [layout.rootKey, layout.issuingKey, ...previous, layout.serverKey].filter((p) => existsSync(p))
}

/** What must be private to Gatehouse's user: the folders, the keys, the registry and its WAL files, settings.key. */
function privatePaths(layout: Layout): FleetSnapshot['privatePaths'] {
  const dirs = [layout.root, layout.caDir, layout.serverDir, layout.previousDir]
  const files = [...keyPaths(layout), layout.settingsKey, ...['', '-wal', '-shm'].map((s) => layout.database + s)]
  return [...dirs, ...files].filter((p) => existsSync(p)).map((path) => ({ path, mode: statSync(path).mode & 0o777 }))
}
