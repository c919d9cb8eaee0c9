import { join } from 'node:path'

/** Where everything lives in a Gatehouse data directory (README.md "Data directory"; docs/architecture.md). */
export function dataDirLayout(dataDir: string) {
  const ca = join(dataDir, 'ca')
  const server = join(dataDir, 'server')
  return {
    root: dataDir,
    database: join(dataDir, 'gatehouse.db'),
    config: join(dataDir, 'gatehouse.json'),
    /** seals secret settings (unless GATEHOUSE_SETTINGS_KEY is set) */
    settingsKey: join(dataDir, 'settings.key'),
    caDir: ca,
    rootCert: join(ca, 'root.crt'),
    rootKey: join(ca, 'root.key'),
    issuingCert: join(ca, 'issuing.crt'),
    issuingKey: join(ca, 'issuing.key'),
    /** issuing + previous issuing (not expired) + root: what devices and relying parties trust */
    chain: join(ca, 'ca.pem'),
    /** issuing CAs replaced by `ca rotate`: previous/<serial>/{issuing.crt,issuing.key} */
    previousDir: join(ca, 'previous'),
    /** a committed rotation not yet moved into place (see ca/pending-rotation.ts) */
    pendingRotation: join(ca, 'next'),
    rotationLock: join(ca, 'rotate.lock'),
    serverDir: server,
    serverCert: join(server, 'server.crt'),
    serverKey: join(server, 'server.key'),
  }
}

export type DataDirLayout = ReturnType<typeof dataDirLayout>
