import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import tls from 'node:tls'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { normalizeSerial } from '../../../certs/index.ts'
import { x509 } from '../../../certs/x509.ts'
import { loadConfig } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { dataDirLayout } from '../../../provisioning/index.ts'
import { connectDevice, readBundleCredentials } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

const available = postgresAvailable()
let server: PostgresServer

/** Every row of every table of the database, as text. */
async function databaseText(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    const out: string[] = []
    for (const { table_name } of tables.rows as { table_name: string }[])
      for (const row of (await client.query(`SELECT t::text AS row FROM "${table_name}" t`)).rows as { row: string }[]) out.push(row.row)
    return out.join('\n')
  } finally {
    await client.end()
  }
}

/** A node with its own data directory (the CA copied from A's once, as a joining machine gets it), logging into `lines`. */
async function startNode(dataDir: string, env: NodeJS.ProcessEnv): Promise<{ node: Gatehouse; lines: string[] }> {
  const lines: string[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) })
  const node = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, env), { log })
  onTestFinished(() => node.close())
  return { node, lines }
}

/** The serial of the certificate a TLS server at port presents. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', rejectUnauthorized: true }, () => {
      resolve(normalizeSerial(socket.getPeerCertificate().serialNumber))
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

const firstCert = (pem: string) =>
  new x509.X509Certificate(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0] ?? '')

describe.runIf(available)('ca rotate on PostgreSQL reaches every node through the database (issue 13)', () => {
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await server?.stop()
  })

  it('node B installs the new issuing CA without a copy and signs with it; node C without the secret reports GH_CA_SYNC_SECRET_MISSING and keeps its CA', async () => {
    const url = await server.createDatabase('ca_sync')
    const dir = tempDir()
    const secretFile = join(dir, 'ca-sync.key')
    writeFileSync(secretFile, randomBytes(32), { mode: 0o600 })
    const env = { GATEHOUSE_DATABASE_URL: url, GATEHOUSE_CA_SYNC_SECRET_FILE: secretFile }
    const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((n) => join(dir, n)) as [string, string, string]
    expect((await runCli(['init', '--data-dir', dirA], env)).code).toBe(0)
    for (const d of [dirB, dirC]) {
      mkdirSync(d, { mode: 0o700 })
      cpSync(dataDirLayout(dirA).caDir, dataDirLayout(d).caDir, { recursive: true })
    }
    const out = join(dir, 'devices')
    expect((await runCli(['device', 'create', 'pump-1', '--out', out, '--data-dir', dirA], env)).code).toBe(0)
    const oldCreds = readBundleCredentials(out, 'pump-1')
    const b = await startNode(dirB, env)
    const c = await startNode(dirC, { GATEHOUSE_DATABASE_URL: url }) // no CA sync secret
    const oldSerial = b.node.control.authority.ca.issuing.certificate.serialNumber

    const rotated = await runCli(['ca', 'rotate', '--json', '--data-dir', dirA], env)
    expect(rotated.code, rotated.stderr).toBe(0)
    const newSerial = (JSON.parse(rotated.stdout) as { issuing: { serial: string } }).issuing.serial
    const issuingA = readFileSync(dataDirLayout(dirA).issuingCert, 'utf8')
    const newIssuing = new x509.X509Certificate(issuingA)

    // B: the change feed's ca.rotated brings the new issuing CA from the database into its own data directory
    await waitFor(
      () => normalizeSerial(b.node.control.authority.ca.issuing.certificate.serialNumber) === normalizeSerial(newSerial),
      15_000,
      "node B's authority on the new issuing CA",
    )
    const layoutB = dataDirLayout(dirB)
    expect(readFileSync(layoutB.issuingCert, 'utf8')).toBe(issuingA)
    for (const key of [layoutB.issuingKey, layoutB.serverKey]) expect(statSync(key).mode & 0o777).toBe(0o600)
    expect(statSync(join(layoutB.previousDir, normalizeSerial(oldSerial), 'issuing.key')).mode & 0o777).toBe(0o600)
    // B's own server certificate, issued from the new issuing CA, is what B now serves
    const serverB = firstCert(readFileSync(layoutB.serverCert, 'utf8'))
    expect(await serverB.verify({ publicKey: newIssuing.publicKey, signatureOnly: true })).toBe(true)
    await waitFor(
      async () => (await servedSerial(b.node.mqtt.port, oldCreds.ca)) === normalizeSerial(serverB.serialNumber),
      10_000,
      "B's TLS on its new server certificate",
    )

    // a renewal through B is signed by the new issuing CA, and B accepts it; the old certificate still connects
    const renewed = await b.node.control.authority.renewDevice('pump-1', {}, 'test')
    const renewedCert = new x509.X509Certificate(renewed.certificatePem)
    expect(renewedCert.issuer).toBe(newIssuing.subject)
    expect(await renewedCert.verify({ publicKey: newIssuing.publicKey, signatureOnly: true })).toBe(true)
    const renewedCreds = { ...oldCreds, cert: renewed.certificatePem, key: renewed.privateKey?.pem ?? '', ca: renewed.chainPem }
    ;(await connectDevice(b.node.mqtt.port, renewedCreds)).end(true)
    ;(await connectDevice(b.node.mqtt.port, oldCreds)).end(true)

    // C has no secret: the coded error in its log and in /readyz; it keeps its issuing CA, and the old certificate connects
    await waitFor(() => c.lines.some((l) => l.includes('GH_CA_SYNC_SECRET_MISSING')), 15_000, "GH_CA_SYNC_SECRET_MISSING in C's log")
    const readyz = await waitFor(
      async () => {
        const res = await fetch(`${c.node.http.url}/readyz`)
        return res.status === 503 ? ((await res.json()) as { checks: Record<string, { code?: string }> }) : null
      },
      10_000,
      "C's /readyz 503",
    )
    expect(readyz.checks.ca).toMatchObject({ status: 'failed', code: 'GH_CA_SYNC_SECRET_MISSING' })
    expect(c.node.control.authority.ca.issuing.certificate.serialNumber).toBe(oldSerial)
    expect(readFileSync(dataDirLayout(dirC).issuingCert, 'utf8')).not.toBe(issuingA)
    ;(await connectDevice(c.node.mqtt.port, oldCreds)).end(true)
    expect(c.lines.join('')).not.toMatch(/PRIVATE KEY/)

    // the database carries the new CA (its key sealed) and no private key in clear
    const text = await databaseText(url)
    expect(text).toContain('"sealed"')
    expect(text).not.toMatch(/PRIVATE KEY/)
  }, 90_000)

  it('ca rotate on PostgreSQL refuses without the CA sync secret (nothing changed), and the secret file must be 0600 and 32 bytes', async () => {
    const url = await server.createDatabase('ca_sync_refused')
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    expect((await runCli(['init', '--data-dir', dataDir], { GATEHOUSE_DATABASE_URL: url })).code).toBe(0)
    const before = readFileSync(dataDirLayout(dataDir).issuingCert, 'utf8')
    const missing = await runCli(['ca', 'rotate', '--data-dir', dataDir], { GATEHOUSE_DATABASE_URL: url })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^error GH_CA_SYNC_SECRET_MISSING: .*openssl rand -out FILE 32/m)
    const loose = join(dir, 'loose.key')
    writeFileSync(loose, randomBytes(32), { mode: 0o644 })
    const short = join(dir, 'short.key')
    writeFileSync(short, randomBytes(16), { mode: 0o600 })
    for (const [file, problem] of [
      [loose, /chmod 600/],
      [short, /16 bytes, fewer than 32/],
    ] as const) {
      const r = await runCli(['ca', 'rotate', '--data-dir', dataDir], { GATEHOUSE_DATABASE_URL: url, GATEHOUSE_CA_SYNC_SECRET_FILE: file })
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(problem)
    }
    expect(readFileSync(dataDirLayout(dataDir).issuingCert, 'utf8')).toBe(before)
  }, 60_000)
})
