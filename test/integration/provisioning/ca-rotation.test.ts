import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { cryptoRandom, normalizeSerial, parseCertificatesPem, systemClock } from '../../../certs/index.ts'
import { dataDirLayout, initControlPlane, loadServerTls, openControlPlane, rotateCa } from '../../../provisioning/index.ts'
import { describeCa } from '../../../provisioning/ca/lifecycle.ts'
import { loadCa } from '../../../provisioning/ca/keystore.ts'
import { rotateIssuingCa } from '../../../provisioning/ca/rotation.ts'
import { PENDING_ROTATION_KEY, planRotation } from '../../../provisioning/ca/rotation-journal.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// Real files in a temp dir, the real openssl CLI, real time (openssl checks validity against now).
const log = pino({ level: 'silent' })
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8)
const serialsOf = (pem: string) => parseCertificatesPem(pem).map((c) => normalizeSerial(c.serialNumber))

function openssl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }))
  })
}

async function initialised(passphrase?: string) {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const secrets = passphrase === undefined ? {} : { passphrase }
  await initControlPlane(dataDir, { hostnames: ['broker.example.com'] }, { log, ...secrets }, 'operator:test')
  const layout = dataDirLayout(dataDir)
  /** creates a device through a control plane on the data dir, as `device create` does; returns its cert file */
  const device = async (id: string) => {
    const control = await openControlPlane(dataDir, {}, { log, ...secrets })
    try {
      const issued = await control.authority.createDevice({ id }, 'operator:test')
      writeFileSync(join(dir, `${id}.pem`), issued.certificatePem)
      writeFileSync(join(dir, `${id}-ca.pem`), issued.chainPem)
      return { ...issued, certFile: join(dir, `${id}.pem`), caFile: join(dir, `${id}-ca.pem`) }
    } finally {
      await control.close()
    }
  }
  return { dir, dataDir, layout, secrets, device }
}

describe('rotating the issuing CA in a data directory', () => {
  it('keeps the old issuing CA under ca/previous, trusts both in ca/ca.pem, and openssl verifies devices of both', async () => {
    const { dataDir, layout, device } = await initialised()
    const before = await loadCa(dataDir)
    const oldSerial = normalizeSerial(before.issuing.certificate.serialNumber)
    const rootBefore = readFileSync(layout.rootCert, 'utf8')
    const issuingBefore = readFileSync(layout.issuingCert, 'utf8')
    const a = await device('dev-a')

    const summary = await rotateCa(dataDir, {}, { log }, 'operator:test')
    const after = await loadCa(dataDir)
    const newSerial = normalizeSerial(after.issuing.certificate.serialNumber)
    expect(summary).toMatchObject({ issuing: { serial: newSerial, status: 'valid' }, previous: { serial: oldSerial } })
    expect(newSerial).not.toBe(oldSerial)
    expect(readFileSync(layout.rootCert, 'utf8')).toBe(rootBefore)
    expect(after.previous.map((p) => normalizeSerial(p.certificate.serialNumber))).toEqual([oldSerial])
    expect(after.issuing.certificate.issuer).toBe(after.root.certificate.subject)
    expect(after.issuing.certificate.subject).not.toBe(before.issuing.certificate.subject)

    const kept = join(layout.previousDir, oldSerial)
    expect(readFileSync(join(kept, 'issuing.crt'), 'utf8')).toBe(issuingBefore)
    expect(mode(join(kept, 'issuing.key'))).toBe('600')
    expect(mode(layout.issuingKey)).toBe('600')
    expect(mode(layout.serverKey)).toBe('600')
    const rootSerial = normalizeSerial(after.root.certificate.serialNumber)
    expect(serialsOf(readFileSync(layout.chain, 'utf8'))).toEqual([newSerial, oldSerial, rootSerial])

    const b = await device('dev-b')
    expect(serialsOf(b.chainPem)).toEqual([newSerial, oldSerial, rootSerial])
    const verified = await openssl(['verify', '-x509_strict', '-CAfile', layout.chain, a.certFile, b.certFile])
    expect(verified.out).toContain(`${a.certFile}: OK`)
    expect(verified.out).toContain(`${b.certFile}: OK`)
    // device A kept its old bundle (old issuing + root): the new broker certificate, sent with the new
    // issuing CA as TLS servers do, still verifies against it
    const server = readFileSync(layout.serverCert, 'utf8')
    expect(serialsOf(server)[1]).toBe(newSerial)
    const sent = await openssl(['verify', '-purpose', 'sslserver', '-CAfile', a.caFile, '-untrusted', layout.serverCert, layout.serverCert])
    expect(sent.out).toContain('OK')
    const text = (await openssl(['x509', '-in', layout.serverCert, '-noout', '-text'])).out
    expect(text).toContain('DNS:broker.example.com')
    const tls = await loadServerTls(dataDir)
    expect(tls.ca).toBe(readFileSync(layout.chain, 'utf8'))
  })

  it('keeps every rotation, newest first, and describes them without a passphrase', async () => {
    const { dataDir } = await initialised('sesame')
    const first = await describeCa(dataDir)
    await rotateCa(dataDir, {}, { log, passphrase: 'sesame' }, 'op')
    const second = await describeCa(dataDir)
    await rotateCa(dataDir, {}, { log, passphrase: 'sesame' }, 'op')
    const third = await describeCa(dataDir)
    expect(third.previous.map((p) => p.serial).sort()).toEqual([first.issuing.serial, second.issuing.serial].sort())
    expect(third.previous.every((p) => p.status === 'valid')).toBe(true)
    const loaded = await loadCa(dataDir, { passphrase: 'sesame' })
    expect(loaded.previous).toHaveLength(2)
    expect(serialsOf(readFileSync(third.paths.chain, 'utf8'))).toHaveLength(4)
  })

  it('needs the passphrase of encrypted keys, changes nothing without it, and encrypts the new keys', async () => {
    const { dataDir, layout } = await initialised('correct horse')
    const before = readdirSync(layout.caDir).sort()
    const issuing = readFileSync(layout.issuingCert, 'utf8')
    await expect(rotateCa(dataDir, {}, { log }, 'op')).rejects.toMatchObject({ code: 'GH_CA_PASSPHRASE_REQUIRED' })
    await expect(rotateCa(dataDir, {}, { log, passphrase: 'battery staple' }, 'op')).rejects.toMatchObject({
      code: 'GH_CA_PASSPHRASE_WRONG',
    })
    expect(readdirSync(layout.caDir).sort()).toEqual(before)
    expect(readFileSync(layout.issuingCert, 'utf8')).toBe(issuing)

    await rotateCa(dataDir, {}, { log, passphrase: 'correct horse' }, 'op')
    expect(readFileSync(layout.issuingKey, 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY')
    expect(readFileSync(layout.serverKey, 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY')
    const [kept] = readdirSync(layout.previousDir)
    expect(readFileSync(join(layout.previousDir, kept!, 'issuing.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY')
    await expect(loadCa(dataDir)).rejects.toMatchObject({ code: 'GH_CA_PASSPHRASE_REQUIRED' })
    expect((await loadCa(dataDir, { passphrase: 'correct horse' })).previous).toHaveLength(1)
  })

  it('audits ca.rotated and emits the ca.rotated event in the registry', async () => {
    const { dataDir } = await initialised()
    const control = await openControlPlane(dataDir, {}, { log })
    try {
      const seq = await control.store.lastEventSeq()
      const summary = await rotateCa(dataDir, {}, { log }, 'operator:test')
      const [audit] = await control.store.listAudit({ action: 'ca.rotated' })
      expect(audit).toMatchObject({
        actor: 'operator:test',
        subject: 'ca',
        details: { serial: summary.issuing.serial, previousSerial: summary.previous.serial },
      })
      expect(await control.store.eventsAfter(seq, 10)).toEqual([
        expect.objectContaining({ type: 'ca.rotated', data: { serial: summary.issuing.serial } }),
      ])
      // an open control plane switches when told to
      await control.reloadCa()
      expect(normalizeSerial(control.authority.ca.issuing.certificate.serialNumber)).toBe(summary.issuing.serial)
    } finally {
      await control.close()
    }
  })
})

describe('an interrupted rotation', () => {
  /** A data dir copied before a rotation, plus the same dir after it: the states a crash can leave. */
  async function beforeAndAfter() {
    const { dir, dataDir, layout } = await initialised()
    const copy = join(dir, 'copy')
    cpSync(dataDir, copy, { recursive: true })
    const summary = await rotateCa(dataDir, {}, { log }, 'op')
    return { dataDir, layout, copy, copyLayout: dataDirLayout(copy), summary }
  }

  it('completes a committed rotation (ca/next) left half-moved, before anything reads the CA', async () => {
    const { layout, copy, copyLayout, summary } = await beforeAndAfter()
    // the crash: ca/previous kept, ca/next committed, the new issuing.key moved but not its certificate
    cpSync(join(layout.previousDir), copyLayout.previousDir, { recursive: true })
    mkdirSync(copyLayout.pendingRotation, { mode: 0o700 })
    for (const [from, name] of [
      [layout.serverKey, 'server.key'],
      [layout.serverCert, 'server.crt'],
      [layout.issuingCert, 'issuing.crt'],
      [layout.chain, 'ca.pem'],
    ] as const) {
      cpSync(from, join(copyLayout.pendingRotation, name))
    }
    cpSync(layout.issuingKey, copyLayout.issuingKey)

    const loaded = await loadCa(copy)
    expect(normalizeSerial(loaded.issuing.certificate.serialNumber)).toBe(summary.issuing.serial)
    expect(loaded.previous.map((p) => normalizeSerial(p.certificate.serialNumber))).toEqual([summary.previous.serial])
    expect(existsSync(copyLayout.pendingRotation)).toBe(false)
    expect(readFileSync(copyLayout.chain, 'utf8')).toBe(readFileSync(layout.chain, 'utf8'))
    expect(readFileSync(copyLayout.serverCert, 'utf8')).toBe(readFileSync(layout.serverCert, 'utf8'))
    // the moved key signs for the moved certificate: a device issued now verifies
    const control = await openControlPlane(copy, {}, { log })
    try {
      const issued = await control.authority.createDevice({ id: 'after-crash' }, 'op')
      const file = join(copy, 'after-crash.pem')
      writeFileSync(file, issued.certificatePem)
      expect((await openssl(['verify', '-CAfile', copyLayout.chain, file])).out).toContain(': OK')
    } finally {
      await control.close()
    }
  })

  it('keeps the old CA when it crashed before the commit, and the next rotation cleans up and succeeds', async () => {
    const { copy, copyLayout, summary } = await beforeAndAfter()
    // the crash: the old CA kept under previous/ (a copy of the current one), a staging dir half written
    const kept = join(copyLayout.previousDir, summary.previous.serial)
    mkdirSync(kept, { recursive: true, mode: 0o700 })
    cpSync(copyLayout.issuingCert, join(kept, 'issuing.crt'))
    cpSync(copyLayout.issuingKey, join(kept, 'issuing.key'))
    const staging = `${copyLayout.pendingRotation}.partial-99999999`
    mkdirSync(staging, { mode: 0o700 })
    writeFileSync(join(staging, 'issuing.key'), 'half', { mode: 0o600 })
    writeFileSync(copyLayout.rotationLock, '99999999') // its lock, from a process that is gone

    const loaded = await loadCa(copy)
    expect(normalizeSerial(loaded.issuing.certificate.serialNumber)).toBe(summary.previous.serial)
    expect(loaded.previous).toEqual([]) // the copy of the current CA is not a previous one
    expect(serialsOf(readFileSync(copyLayout.chain, 'utf8'))).toHaveLength(2)

    const again = await rotateCa(copy, {}, { log }, 'op')
    expect(again.previous.serial).toBe(summary.previous.serial)
    expect(existsSync(staging)).toBe(false)
    expect(existsSync(copyLayout.rotationLock)).toBe(false)
    expect((await loadCa(copy)).previous).toHaveLength(1)
  })

  it('refuses a second rotation while another holds the lock, and changes nothing', async () => {
    const { dataDir, layout } = await initialised()
    writeFileSync(layout.rotationLock, String(process.ppid)) // a live process
    const issuing = readFileSync(layout.issuingCert, 'utf8')
    await expect(rotateCa(dataDir, {}, { log }, 'op')).rejects.toMatchObject({ code: 'GH_CA_ROTATION_IN_PROGRESS' })
    expect(readFileSync(layout.issuingCert, 'utf8')).toBe(issuing)
    expect(existsSync(layout.previousDir)).toBe(false)
    renameSync(layout.rotationLock, join(layout.root, 'lock-gone'))
    await rotateCa(dataDir, {}, { log }, 'op')
  })
})

describe('a rotation killed between its files and its audit entry (the registry journal)', () => {
  /**
   * rotateIssuingCa with the journal rotateCa uses, but the process "dies" at one step: the step throws,
   * and the lock is left behind by a pid that is gone, as a SIGKILL leaves it.
   */
  async function killedAt(step: 'plan' | 'record') {
    const { dataDir, layout } = await initialised()
    const store = new SqliteRegistryStore(layout.database)
    const before = readFileSync(layout.issuingCert, 'utf8')
    const killed = new Error(`killed at ${step}`)
    await expect(
      rotateIssuingCa(
        dataDir,
        {},
        { clock: systemClock, random: cryptoRandom },
        {
          plan: async (rotation) => {
            await planRotation(store, { ...rotation, actor: 'operator:killed', at: new Date().toISOString() })
            if (step === 'plan') throw killed
          },
          record: () => Promise.reject(killed),
        },
      ),
    ).rejects.toBe(killed)
    store.close()
    writeFileSync(layout.rotationLock, '99999999')
    const reader = new SqliteRegistryStore(layout.database, { readonly: true })
    const planned = JSON.parse((await reader.getMeta(PENDING_ROTATION_KEY))!) as { serial: string }
    reader.close()
    return { dataDir, layout, before, planned }
  }

  const audited = async (dataDir: string) => {
    const control = await openControlPlane(dataDir, {}, { log })
    try {
      return {
        audit: await control.store.listAudit({ action: 'ca.rotated' }),
        events: (await control.store.eventsAfter(0, 1000)).filter((e) => e.type === 'ca.rotated'),
        pending: await control.store.getMeta(PENDING_ROTATION_KEY),
      }
    } finally {
      await control.close()
    }
  }

  it('past the commit: the next open writes the audit entry and event it lacks, once', async () => {
    const { dataDir, layout, before, planned } = await killedAt('record')
    expect(readFileSync(layout.issuingCert, 'utf8')).not.toBe(before) // the new CA is in place on disk
    const first = await audited(dataDir)
    expect(first.audit).toEqual([
      expect.objectContaining({
        actor: 'operator:killed',
        subject: 'ca',
        details: expect.objectContaining({ serial: planned.serial, recovered: true }),
      }),
    ])
    expect(first.events).toEqual([expect.objectContaining({ data: { serial: planned.serial } })])
    expect(first.pending).toBe('')
    expect(normalizeSerial((await loadCa(dataDir)).issuing.certificate.serialNumber)).toBe(planned.serial)
    const second = await audited(dataDir)
    expect(second.audit).toHaveLength(1)
    expect(second.events).toHaveLength(1)
  })

  it('before the commit: the next open drops the plan, audits nothing, and the old CA stays', async () => {
    const { dataDir, layout, before } = await killedAt('plan')
    expect(readFileSync(layout.issuingCert, 'utf8')).toBe(before)
    expect(await audited(dataDir)).toEqual({ audit: [], events: [], pending: '' })
    expect(readFileSync(layout.issuingCert, 'utf8')).toBe(before)
  })

  it('leaves a plan alone while a live process holds the rotation lock', async () => {
    const { dataDir, layout, planned } = await killedAt('record')
    writeFileSync(layout.rotationLock, String(process.ppid)) // a live process: its rotation records itself
    const during = await audited(dataDir)
    expect(during.audit).toEqual([])
    expect(JSON.parse(during.pending!)).toMatchObject({ serial: planned.serial })
    renameSync(layout.rotationLock, join(layout.root, 'lock-gone'))
    expect((await audited(dataDir)).audit).toHaveLength(1)
  })

  it('a corrupt plan row is a coded error on every open that keeps the row: `gatehouse start` fails the same way each time', async () => {
    const { dataDir, layout } = await initialised()
    const store = new SqliteRegistryStore(layout.database)
    await store.setMeta(PENDING_ROTATION_KEY, '{"serial":"ab12", torn')
    store.close()
    const issuing = readFileSync(layout.issuingCert, 'utf8')
    await expect(openControlPlane(dataDir, {}, { log })).rejects.toMatchObject({
      code: 'GH_CA_ROTATION_PLAN_CORRUPT',
      message: expect.stringMatching(
        /meta row 'ca\.rotation\.pending' is not a CA rotation plan \(not JSON: .*\): it was kept as evidence/,
      ),
    })
    await expect(rotateCa(dataDir, {}, { log }, 'op')).rejects.toMatchObject({ code: 'GH_CA_ROTATION_PLAN_CORRUPT' })
    for (let restart = 0; restart < 2; restart++) {
      const start = await runCli(['start', '--data-dir', dataDir, '--mqtt-port', '0', '--http-port', '0'])
      expect(start.code).not.toBe(0)
      expect(start.stderr).toContain('GH_CA_ROTATION_PLAN_CORRUPT')
    }
    const reader = new SqliteRegistryStore(layout.database, { readonly: true })
    expect(await reader.getMeta(PENDING_ROTATION_KEY)).toBe('{"serial":"ab12", torn') // the evidence is kept
    reader.close()
    expect(readFileSync(layout.issuingCert, 'utf8')).toBe(issuing)
    const wrongShape = new SqliteRegistryStore(layout.database)
    await wrongShape.setMeta(PENDING_ROTATION_KEY, '{"serial":"ab12"}')
    wrongShape.close()
    await expect(openControlPlane(dataDir, {}, { log })).rejects.toMatchObject({
      code: 'GH_CA_ROTATION_PLAN_CORRUPT',
      message: expect.stringContaining('(no string previousSerial, notAfter, serverSerial, actor, at)'),
    })
  })

  it('`gatehouse ca show` settles a plan left by a killed rotation, as every other open of the registry does', async () => {
    const { dataDir, layout, planned } = await killedAt('record')
    const shown = await runCli(['ca', 'show', '--data-dir', dataDir, '--json'])
    expect(shown.code, shown.stderr).toBe(0)
    expect(JSON.parse(shown.stdout)).toMatchObject({ issuing: { serial: planned.serial } })
    const reader = new SqliteRegistryStore(layout.database, { readonly: true }) // opens nothing that would settle it
    expect(await reader.getMeta(PENDING_ROTATION_KEY)).toBe('')
    expect(await reader.listAudit({ action: 'ca.rotated' })).toEqual([
      expect.objectContaining({ actor: 'operator:killed', details: expect.objectContaining({ serial: planned.serial, recovered: true }) }),
    ])
    reader.close()
  })

  it('`ca rotate` settles a plan left by a killed rotation before it rotates again', async () => {
    const { dataDir, planned } = await killedAt('record')
    const summary = await rotateCa(dataDir, {}, { log }, 'op')
    const { audit } = await audited(dataDir)
    expect(audit.map((a) => a.details.serial)).toEqual([summary.issuing.serial, planned.serial]) // newest first
    expect(summary.previous.serial).toBe(planned.serial)
  })
})

describe('CRLs after a rotation, as openssl sees them', () => {
  it("lists a revoked certificate of the old CA on the old CA's CRL, signed by it, and the new CA's CRL stays empty", async () => {
    const { dir, dataDir, layout, device } = await initialised()
    const old = await device('old-1')
    const oldIssuing = join(dir, 'old-issuing.pem')
    cpSync(layout.issuingCert, oldIssuing)
    await rotateCa(dataDir, {}, { log }, 'op')
    const fresh = await device('new-1')
    const control = await openControlPlane(dataDir, {}, { log, clock: systemClock })
    try {
      await control.authority.revokeDevice('old-1', 'keyCompromise', 'op')
      const crls = await control.authority.currentCrls()
      expect(crls.map((c) => c.entries)).toEqual([0, 1])
      const [currentFile, previousFile, all] = ['crl-new.pem', 'crl-old.pem', 'crl-all.pem'].map((n) => join(dir, n)) as [
        string,
        string,
        string,
      ]
      writeFileSync(currentFile, crls[0]!.pem)
      writeFileSync(previousFile, crls[1]!.pem)
      writeFileSync(all, crls[0]!.pem + crls[1]!.pem)
      const oldText = (await openssl(['crl', '-in', previousFile, '-noout', '-text'])).out
      expect(oldText.toLowerCase()).toContain(old.serial)
      expect(oldText).toContain('Key Compromise')
      expect((await openssl(['crl', '-in', previousFile, '-noout', '-issuer'])).out).not.toContain('serialNumber')
      // signed by the old issuing CA itself
      expect((await openssl(['crl', '-in', previousFile, '-noout', '-CAfile', oldIssuing])).out).toMatch(/verify OK/)
      expect((await openssl(['crl', '-in', currentFile, '-noout', '-CAfile', layout.issuingCert])).out).toMatch(/verify OK/)
      // a relying party with both CRLs in one file: the revoked old device fails, the new one passes
      const checked = await openssl(['verify', '-crl_check', '-CRLfile', all, '-CAfile', layout.chain, old.certFile])
      expect(checked.out).toContain('certificate revoked')
      const ok = await openssl(['verify', '-crl_check', '-CRLfile', all, '-CAfile', layout.chain, fresh.certFile])
      expect(ok.out).toContain(`${fresh.certFile}: OK`)
    } finally {
      await control.close()
    }
  })
})
