import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cryptoRandom, systemClock, systemTimers } from '../../../certs/index.ts'
import { installSharedCa } from '../../../provisioning/ca/ca-sync.ts'
import { sealCaMaterial } from '../../../provisioning/ca/ca-material.ts'
import { initDataDir } from '../../../provisioning/ca/keystore.ts'
import { rotateIssuingCa } from '../../../provisioning/ca/rotation.ts'
import { dataDirLayout } from '../../../provisioning/data-dir/layout.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const deps = { clock: systemClock, random: cryptoRandom }
const secret = new Uint8Array(randomBytes(32))
let root: string
let source: string
let material: string

/** A node's data directory holding a copy of the source's CA as it was before the rotation. */
function joiningNode(): string {
  const dir = join(tempDir(), 'node')
  mkdirSync(dir, { mode: 0o700 })
  cpSync(join(source, 'before-ca'), dataDirLayout(dir).caDir, { recursive: true })
  cpSync(join(source, 'before-server'), dataDirLayout(dir).serverDir, { recursive: true })
  return dir
}

/** What a data directory's ca/ holds, file by file. */
function snapshot(dir: string): Record<string, string> {
  const ca = dataDirLayout(dir).caDir
  return Object.fromEntries(
    (readdirSync(ca, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.crt') || f.endsWith('.key') || f.endsWith('.pem'))
      .map((f) => [f, readFileSync(join(ca, f), 'utf8')]),
  )
}

const install = (dir: string, row: string, caSyncSecret?: Uint8Array) =>
  installSharedCa(dir, caSyncSecret ? { caSyncSecret } : {}, {
    store: { getMeta: async () => row },
    ...deps,
    timers: systemTimers,
    log: pino({ level: 'silent' }),
  })

describe('installSharedCa: a rotation carried by the database into another data directory', () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'gatehouse-ca-sync-')) // beforeAll: no test to tie tempDir() to
    source = join(root, 'source')
    await initDataDir(source, {}, deps)
    const layout = dataDirLayout(source)
    cpSync(layout.caDir, join(source, 'before-ca'), { recursive: true })
    cpSync(layout.serverDir, join(source, 'before-server'), { recursive: true })
    await rotateIssuingCa(source, {}, deps, {
      plan: async (_rotation, issuers) => {
        material = sealCaMaterial(issuers.issuing, issuers.previous, secret, cryptoRandom)
      },
      record: async () => {},
    })
    expect(material).not.toMatch(/PRIVATE KEY/)
  }, 30_000)
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('installs the new issuing CA with the secret, once', async () => {
    const dir = joiningNode()
    expect(await install(dir, material, secret)).toBe(true)
    expect(readFileSync(dataDirLayout(dir).issuingCert, 'utf8')).toBe(readFileSync(dataDirLayout(source).issuingCert, 'utf8'))
    expect(readFileSync(dataDirLayout(dir).issuingKey, 'utf8')).toBe(readFileSync(dataDirLayout(source).issuingKey, 'utf8'))
    expect(await install(dir, material, secret)).toBe(false)
  })

  it('fail/no secret, another secret, a tampered key, a foreign root or a row that is not material: its code, and ca/ untouched', async () => {
    const tampered = JSON.parse(material) as { issuing: { key: { sealed: { data: string } } } }
    const data = Buffer.from(tampered.issuing.key.sealed.data, 'base64')
    data[0] = (data[0] ?? 0) ^ 1
    tampered.issuing.key.sealed.data = data.toString('base64')
    const foreign = join(tempDir(), 'foreign')
    await initDataDir(foreign, {}, deps)
    for (const [dir, row, key, code] of [
      [joiningNode(), material, undefined, 'GH_CA_SYNC_SECRET_MISSING'],
      [joiningNode(), material, new Uint8Array(randomBytes(32)), 'GH_CA_SYNC_SECRET_WRONG'],
      [joiningNode(), JSON.stringify(tampered), secret, 'GH_CA_SYNC_SECRET_WRONG'],
      [foreign, material, secret, 'GH_CA_SYNC_REFUSED'],
      [joiningNode(), '{"v":2}', secret, 'GH_CA_SYNC_REFUSED'],
    ] as const) {
      const before = snapshot(dir)
      await expect(install(dir, row, key)).rejects.toMatchObject({ code })
      expect(snapshot(dir)).toEqual(before)
    }
  }, 30_000)
})
