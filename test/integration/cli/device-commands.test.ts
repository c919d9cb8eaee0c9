import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openssl, runCli, spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8)

async function initialised(env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const out = join(dir, 'devices')
  const init = await runCli(['init', '--data-dir', dataDir], env)
  expect(init.code, init.stderr).toBe(0)
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runCli([...args, '--data-dir', dataDir], { ...env, ...extraEnv })
  const deviceCount = async () => JSON.parse((await cli(['device', 'list', '--json'])).stdout).length as number
  return { dir, dataDir, out, cli, deviceCount }
}

describe('gatehouse init', () => {
  it('creates the CA with private files, and a second run keeps the same CA', async () => {
    const { dataDir, cli } = await initialised()
    for (const key of ['ca/root.key', 'ca/issuing.key', 'server/server.key', 'gatehouse.db']) expect(mode(join(dataDir, key))).toBe('600')
    expect(mode(dataDir)).toBe('700')
    const rootBefore = readFileSync(join(dataDir, 'ca/root.crt'), 'utf8')
    const again = await cli(['init', '--json'])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ createdCa: false, serverCertIssued: false })
    expect(readFileSync(join(dataDir, 'ca/root.crt'), 'utf8')).toBe(rootBefore)
  })

  it('adds a hostname to the server certificate without replacing the CA', async () => {
    const { dataDir, cli } = await initialised()
    const res = await cli(['init', '--hostname', 'broker.example.com', '--hostname', '10.1.2.3', '--json'])
    expect(JSON.parse(res.stdout)).toMatchObject({ createdCa: false, serverCertIssued: true })
    const text = await openssl(['x509', '-in', join(dataDir, 'server/server.crt'), '-noout', '-text'])
    expect(text.stdout).toMatch(/DNS:broker\.example\.com/)
    expect(text.stdout).toMatch(/IP Address:10\.1\.2\.3/)
    expect(text.stdout).toMatch(/TLS Web Server Authentication/)
  })
})

describe('gatehouse device create', () => {
  it('writes a bundle whose certificate openssl verifies and reads as a P-256 client certificate', async () => {
    const { out, cli } = await initialised()
    const res = await cli(['device', 'create', 'pump-7', '--group', 'pumps', '--out', out, '--json'])
    expect(res.code, res.stderr).toBe(0)
    const dir = join(out, 'pump-7')
    expect(mode(join(dir, 'key.pem'))).toBe('600')
    const verify = await openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'cert.pem')])
    expect(verify.stdout.trim()).toBe(`${join(dir, 'cert.pem')}: OK`)
    const text = (await openssl(['x509', '-in', join(dir, 'cert.pem'), '-noout', '-text'])).stdout
    expect(text).toMatch(/Subject: CN ?= ?pump-7/)
    expect(text).toMatch(/URI:urn:gatehouse:device:pump-7/)
    expect(text).toMatch(/TLS Web Client Authentication/)
    expect(text).toMatch(/ASN1 OID: prime256v1/)
    expect(text).toMatch(/CA:FALSE/)
    const keyCheck = await openssl(['pkey', '-in', join(dir, 'key.pem'), '-noout'])
    expect(keyCheck.code).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({ deviceId: 'pump-7', group: 'pumps', tier: 'standard' })
  })

  it('signs a CSR made by openssl req, and writes no key', async () => {
    const { dir, out, cli } = await initialised()
    const key = join(dir, 'dev.key')
    const csr = join(dir, 'dev.csr')
    const made = await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      '/CN=cam-1',
    ])
    expect(made.code, made.stderr).toBe(0)
    const res = await cli(['device', 'create', 'cam-1', '--csr', csr, '--out', out])
    expect(res.code, res.stderr).toBe(0)
    expect(existsSync(join(out, 'cam-1', 'key.pem'))).toBe(false)
    expect((await openssl(['verify', '-CAfile', join(out, 'cam-1', 'ca.pem'), join(out, 'cam-1', 'cert.pem')])).code).toBe(0)
    // the certificate carries the CSR's key
    const certKey = (await openssl(['x509', '-in', join(out, 'cam-1', 'cert.pem'), '-noout', '-pubkey'])).stdout
    const csrKey = (await openssl(['pkey', '-in', key, '-pubout'])).stdout
    expect(certKey).toBe(csrKey)
  })

  it.each([
    ['fail/rsa-1024', 'rsa1024', 'GH_CSR_WEAK_KEY'],
    ['fail/cn-mismatch', 'other-cn', 'GH_CSR_CN_MISMATCH'],
    ['fail/tampered', 'tampered', 'GH_CSR_BAD_SIGNATURE'],
    ['fail/garbage', 'garbage', 'GH_CSR_UNPARSABLE'],
  ])('%s: refuses the CSR, exits 1 and leaves nothing in the registry or on disk', async (_name, kind, code) => {
    const { dir, out, cli, deviceCount } = await initialised()
    const csr = join(dir, 'bad.csr')
    if (kind === 'rsa1024') {
      await openssl(['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', join(dir, 'k'), '-out', csr, '-subj', '/CN=dev-1'])
    } else if (kind === 'other-cn') {
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k'),
        '-out',
        csr,
        '-subj',
        '/CN=someone-else',
      ])
    } else if (kind === 'tampered') {
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k'),
        '-out',
        csr,
        '-outform',
        'DER',
        '-subj',
        '/CN=dev-1',
      ])
      const der = readFileSync(csr)
      const at = der.indexOf(Buffer.from('dev-1'))
      der[at] = 'x'.charCodeAt(0) // CN dev-1 -> xev-1 breaks the signature; re-sign nothing
      writeFileSync(csr, der)
      // the id must match the tampered CN, so the signature check is what refuses it
      const res = await cli(['device', 'create', 'xev-1', '--csr', csr, '--out', out])
      expect(res.code).toBe(1)
      expect(res.stderr).toContain(`error ${code}`)
      expect(await deviceCount()).toBe(0)
      expect(existsSync(out) ? readdirSync(out) : []).toEqual([])
      return
    } else {
      writeFileSync(csr, 'this is not a certificate request')
    }
    const res = await cli(['device', 'create', 'dev-1', '--csr', csr, '--out', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain(`error ${code}`)
    expect(await deviceCount()).toBe(0)
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([])
  })

  it('refuses a --csr file that is truncated, of the wrong type, too large, doubled or missing, each with a GH_ code and nothing stored', async () => {
    const { dir, dataDir, out, cli, deviceCount } = await initialised()
    const key = join(dir, 'k.pem')
    const good = join(dir, 'good.csr')
    const made = await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      good,
      '-subj',
      '/CN=dev-1',
    ])
    expect(made.code, made.stderr).toBe(0)
    const p12 = join(dir, 'dev.p12')
    expect((await cli(['device', 'create', 'other-1', '--out', out, '--p12'], { GATEHOUSE_P12_PASSWORD: 'pw' })).code).toBe(0)
    writeFileSync(p12, readFileSync(join(out, 'other-1.p12')))
    const pem = readFileSync(good, 'utf8')
    const files: [string, string | Buffer | null, string][] = [
      ['truncated-pem', pem.slice(0, pem.length >> 1), 'GH_CSR_UNPARSABLE'],
      ['certificate-pem', readFileSync(join(dataDir, 'ca', 'root.crt')), 'GH_CSR_UNPARSABLE'],
      ['pkcs12', readFileSync(p12), 'GH_CSR_UNPARSABLE'],
      ['private-key', readFileSync(key), 'GH_CSR_UNPARSABLE'],
      ['two-csrs', pem + pem, 'GH_CSR_UNPARSABLE'],
      ['ten-megabytes', Buffer.alloc(10 * 2 ** 20, 0x41), 'GH_CSR_UNPARSABLE'],
      ['missing', null, 'GH_'],
    ]
    const before = await deviceCount()
    for (const [name, content, code] of files) {
      const path = join(dir, `${name}.csr`)
      if (content !== null) writeFileSync(path, content)
      const res = await cli(['device', 'create', 'dev-1', '--csr', path, '--out', join(dir, 'bad-out')])
      expect(res.code, `${name}: ${res.stderr}`).toBe(1)
      expect(res.stderr, name).toContain(`error ${code}`)
    }
    expect(await deviceCount()).toBe(before)
    expect(existsSync(join(dir, 'bad-out'))).toBe(false)
  })

  it.each([['a/b'], ['dev+1'], ['dev#'], ['x'.repeat(65)], ['..'], ['with space']])('refuses the device id %j with exit 1', async (id) => {
    const { out, cli, deviceCount } = await initialised()
    const res = await cli(['device', 'create', id, '--out', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error GH_DEVICE_ID_INVALID')
    expect(await deviceCount()).toBe(0)
  })

  it('refuses an existing id instead of overwriting it', async () => {
    const { out, cli } = await initialised()
    expect((await cli(['device', 'create', 'a', '--out', out])).code).toBe(0)
    const again = await cli(['device', 'create', 'a', '--out', join(out, 'other')])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('error GH_DEVICE_EXISTS')
  })

  it('writes a PKCS#12 file that openssl opens with the printed password, and not with another', async () => {
    const { out, cli } = await initialised()
    const res = await cli(['device', 'create', 'p12-dev', '--p12', '--out', out, '--json'])
    expect(res.code, res.stderr).toBe(0)
    const { p12Password, path } = JSON.parse(res.stdout)
    expect(path).toBe(join(out, 'p12-dev.p12'))
    expect(mode(path)).toBe('600')
    const opened = await openssl(['pkcs12', '-in', path, '-passin', `pass:${p12Password}`, '-nodes'])
    expect(opened.code, opened.stderr).toBe(0)
    expect(opened.stdout).toContain('BEGIN PRIVATE KEY')
    expect(opened.stdout).toMatch(/subject=CN ?= ?p12-dev/)
    expect((await openssl(['pkcs12', '-in', path, '-passin', 'pass:wrong', '-nodes'])).code).not.toBe(0)
  })

  it('uses GATEHOUSE_P12_PASSWORD when it is set, and does not print it', async () => {
    const { out, cli } = await initialised()
    const res = await cli(['device', 'create', 'p12-env', '--p12', '--out', out], { GATEHOUSE_P12_PASSWORD: 's3cret-pass' })
    expect(res.code).toBe(0)
    expect(res.stdout).not.toContain('s3cret-pass')
    expect((await openssl(['pkcs12', '-in', join(out, 'p12-env.p12'), '-passin', 'pass:s3cret-pass', '-nodes'])).code).toBe(0)
  })
})

describe('gatehouse device create-batch', () => {
  it('makes N devices with N bundles, reporting progress on stderr', async () => {
    const { out, cli, deviceCount } = await initialised()
    const res = await cli(['device', 'create-batch', '--count', '40', '--prefix', 'sensor-', '--group', 'field', '--out', out, '--json'])
    expect(res.code, res.stderr).toBe(0)
    expect(JSON.parse(res.stdout)).toMatchObject({ count: 40, first: 'sensor-0001', last: 'sensor-0040' })
    expect(res.stderr).toContain('issuing: 40/40 (100%)')
    expect(await deviceCount()).toBe(40)
    expect(readdirSync(out).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `sensor-${String(i + 1).padStart(4, '0')}`))
  })

  it('leaves no half-made device when the batch cannot be written', async () => {
    const { dir, cli, deviceCount } = await initialised()
    const notADir = join(dir, 'file')
    writeFileSync(notADir, 'x')
    const res = await cli(['device', 'create-batch', '--count', '5', '--prefix', 'b-', '--out', notADir])
    expect(res.code).toBe(1)
    expect(await deviceCount()).toBe(0)
  })

  it('refuses a batch that would reuse an existing id, before issuing anything', async () => {
    const { out, cli, deviceCount } = await initialised()
    await cli(['device', 'create', 'b-0003', '--out', out])
    const res = await cli(['device', 'create-batch', '--count', '5', '--prefix', 'b-', '--out', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error GH_DEVICE_EXISTS')
    expect(await deviceCount()).toBe(1)
  })

  it('exits 2 on a usage error', async () => {
    const { cli } = await initialised()
    expect((await cli(['device', 'create-batch', '--count', 'many', '--prefix', 'x'])).code).toBe(2)
    expect((await cli(['device', 'create-batch', '--prefix', 'x'])).code).toBe(2)
  })
})

describe('revocation, renewal, status and audit', () => {
  it('revokes a device, and openssl finds its serial in the CRL with the reason', async () => {
    const { dir, out, cli } = await initialised()
    const created = JSON.parse((await cli(['device', 'create', 'lost-1', '--out', out, '--json'])).stdout)
    const revoked = await cli(['device', 'revoke', 'lost-1', '--reason', 'keyCompromise'])
    expect(revoked.code, revoked.stderr).toBe(0)
    const crlFile = join(dir, 'crl.pem')
    expect((await cli(['crl', '--out', crlFile])).code).toBe(0)
    const text = (await openssl(['crl', '-in', crlFile, '-noout', '-text'])).stdout
    expect(text.toLowerCase()).toContain(created.serial)
    expect(text).toContain('Key Compromise')
    const verified = await openssl(['crl', '-in', crlFile, '-noout', '-CAfile', join(out, 'lost-1', 'ca.pem')])
    expect(verified.stderr + verified.stdout).toMatch(/verify OK/)
    const der = join(dir, 'crl.der')
    expect((await cli(['crl', '--der', '--out', der])).code).toBe(0)
    expect((await openssl(['crl', '-inform', 'DER', '-in', der, '-noout'])).code).toBe(0)
    const show = JSON.parse((await cli(['device', 'show', 'lost-1', '--json'])).stdout)
    expect(show).toMatchObject({ status: 'revoked', certificates: [{ status: 'revoked', revocationReason: 'keyCompromise' }] })
    expect((await cli(['device', 'revoke', 'lost-1'])).code).toBe(1)
  })

  it('renews a device: a new certificate, the old one superseded', async () => {
    const { out, cli } = await initialised()
    const first = JSON.parse((await cli(['device', 'create', 'r-1', '--out', out, '--json'])).stdout)
    const renewed = await cli(['device', 'renew', 'r-1', '--out', join(out, 'renewed'), '--json'])
    expect(renewed.code, renewed.stderr).toBe(0)
    const second = JSON.parse(renewed.stdout)
    expect(second.serial).not.toBe(first.serial)
    expect(existsSync(join(out, 'renewed', 'r-1', 'key.pem'))).toBe(true)
    const show = JSON.parse((await cli(['device', 'show', 'r-1', '--json'])).stdout)
    expect(show.certificates.map((c: { serial: string; status: string }) => [c.serial, c.status])).toEqual([
      [first.serial, 'superseded'],
      [second.serial, 'active'],
    ])
  })

  it('disables and enables a device and audits each change with its actor', async () => {
    const { out, cli } = await initialised()
    await cli(['device', 'create', 'd-1', '--out', out])
    expect((await cli(['device', 'disable', 'd-1'])).code).toBe(0)
    expect(JSON.parse((await cli(['device', 'show', 'd-1', '--json'])).stdout).status).toBe('disabled')
    expect((await cli(['device', 'enable', 'd-1'])).code).toBe(0)
    const audit = JSON.parse((await cli(['audit', '--device', 'd-1', '--json'])).stdout)
    expect(audit.map((e: { action: string }) => e.action)).toEqual(['device.enabled', 'device.disabled', 'device.created'])
    expect(audit[0].actor).toMatch(/^operator/)
    expect((await cli(['device', 'show', 'ghost'])).stderr).toContain('error GH_DEVICE_NOT_FOUND')
  })
})

describe('the CA at rest', () => {
  it('encrypts the keys with GATEHOUSE_CA_PASSPHRASE, and a wrong or missing passphrase changes nothing', async () => {
    const env = { GATEHOUSE_CA_PASSPHRASE: 'correct horse' }
    const { dataDir, out, cli, deviceCount } = await initialised(env)
    expect(readFileSync(join(dataDir, 'ca/issuing.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY')
    expect((await cli(['device', 'create', 'ok-1', '--out', out])).code).toBe(0)
    const wrong = await cli(['device', 'create', 'no-1', '--out', out], { GATEHOUSE_CA_PASSPHRASE: 'battery staple' })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain('error GH_CA_PASSPHRASE_WRONG')
    const missing = await runCli(['device', 'create', 'no-2', '--out', out, '--data-dir', dataDir])
    expect(missing.stderr).toContain('error GH_CA_PASSPHRASE_REQUIRED')
    expect(await deviceCount()).toBe(1)
    expect(existsSync(join(out, 'no-1'))).toBe(false)
  })

  it('refuses a group-readable CA key, and a corrupt one, with what to do', async () => {
    const { dataDir, out, cli } = await initialised()
    chmodSync(join(dataDir, 'ca/issuing.key'), 0o640)
    const loose = await cli(['device', 'create', 'x-1', '--out', out])
    expect(loose.code).toBe(1)
    expect(loose.stderr).toContain('error GH_CA_KEY_PERMISSIONS')
    expect(loose.stderr).toContain('chmod 600')
    chmodSync(join(dataDir, 'ca/issuing.key'), 0o600)
    writeFileSync(join(dataDir, 'ca/issuing.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
    const corrupt = await cli(['device', 'create', 'x-2', '--out', out])
    expect(corrupt.stderr).toContain('error GH_CA_KEY_UNREADABLE')
  })

  it('reads the CA key only when a command signs: reading works without it, signing still stops with its code and changes nothing', async () => {
    const env = { GATEHOUSE_CA_PASSPHRASE: 'correct horse' }
    const { dir, dataDir, out, cli } = await initialised(env)
    expect((await cli(['device', 'create', 'ok-1', '--out', out])).code).toBe(0)
    const status = async () => JSON.parse((await cli(['device', 'show', 'ok-1', '--json'])).stdout).status
    const actions = async () => JSON.parse((await cli(['audit', '--json'])).stdout).map((e: { action: string }) => e.action)
    const before = await actions()
    const reads = [['device', 'list'], ['device', 'show', 'ok-1'], ['audit'], ['settings', 'get', '--device', 'ok-1']]
    // without the passphrase, and then with the key file gone: what signs nothing still works
    for (const args of reads) {
      const res = await cli(args, { GATEHOUSE_CA_PASSPHRASE: '' })
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0)
    }
    const wrong = await cli(['device', 'revoke', 'ok-1'], { GATEHOUSE_CA_PASSPHRASE: 'battery staple' })
    expect(wrong.stderr).toContain('error GH_CA_PASSPHRASE_WRONG')
    renameSync(join(dataDir, 'ca/issuing.key'), join(dataDir, 'issuing.key.away'))
    for (const args of reads) {
      const res = await cli(args)
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0)
    }
    const cases: [string[], string][] = [
      [['device', 'create', 'no-1', '--out', out], 'GH_CA_KEY_UNREADABLE'],
      [['device', 'revoke', 'ok-1'], 'GH_CA_KEY_UNREADABLE'],
      [['device', 'bulk', 'revoke', '--status', 'active', '--max', '10'], 'GH_CA_KEY_UNREADABLE'],
      [['claim', 'create', '--group', 'g', '--out', join(dir, 'claims')], 'GH_CA_KEY_UNREADABLE'],
    ]
    for (const [args, code] of cases) {
      const res = await cli(args)
      expect(res.code, args.join(' ')).toBe(1)
      expect(res.stderr, args.join(' ')).toContain(`error ${code}`)
    }
    // the revocations (signed CRLs follow them) stopped before the registry changed
    expect(await status()).toBe('active')
    expect(await actions()).toEqual(before)
    expect(existsSync(join(out, 'no-1'))).toBe(false)
    renameSync(join(dataDir, 'issuing.key.away'), join(dataDir, 'ca/issuing.key'))
    expect((await cli(['device', 'revoke', 'ok-1'])).code).toBe(0)
    expect(await status()).toBe('revoked')
  })

  it('says to run init when there is no CA', async () => {
    const res = await runCli(['device', 'list', '--data-dir', join(tempDir(), 'empty')])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error GH_CA_NOT_INITIALIZED')
  })
})

describe('the gatehouse binary', () => {
  it('lets a second process read the registry the first one wrote, and exits non-zero on errors', async () => {
    const { dataDir, out, cli } = await initialised()
    await cli(['device', 'create-batch', '--count', '3', '--prefix', 'p-', '--out', out])
    const listed = await spawnCli(['device', 'list', '--json', '--data-dir', dataDir])
    expect(listed.code, listed.stderr).toBe(0)
    expect(JSON.parse(listed.stdout).map((d: { id: string }) => d.id)).toEqual(['p-0001', 'p-0002', 'p-0003'])
    const bad = await spawnCli(['device', 'show', 'nope', '--data-dir', dataDir])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('error GH_DEVICE_NOT_FOUND')
    const help = await spawnCli(['device', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('create-batch')
  })
})
