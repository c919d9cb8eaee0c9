import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openssl, runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

interface CaInfo {
  subject: string
  serial: string
  fingerprint: string
  notBefore: string
  notAfter: string
  status: string
}

async function initialised(env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const out = join(dir, 'devices')
  const init = await runCli(['init', '--data-dir', dataDir], env)
  expect(init.code, init.stderr).toBe(0)
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runCli([...args, '--data-dir', dataDir], { ...env, ...extraEnv })
  const json = async <T>(args: string[]): Promise<T> => {
    const res = await cli([...args, '--json'])
    expect(res.code, res.stderr).toBe(0)
    return JSON.parse(res.stdout) as T
  }
  return { dir, dataDir, out, cli, json }
}

describe('gatehouse ca rotate / ca show', () => {
  it('rotates the issuing CA: devices created before and after both verify against ca/ca.pem, and ca show lists the previous CA', async () => {
    const { dataDir, out, cli, json } = await initialised()
    const shown = await json<{ root: CaInfo; issuing: CaInfo; previous: CaInfo[]; paths: { chain: string } }>(['ca', 'show'])
    expect(shown).toMatchObject({
      root: { status: 'valid' },
      issuing: { status: 'valid' },
      previous: [],
      paths: { chain: join(dataDir, 'ca', 'ca.pem') },
    })
    expect((await cli(['device', 'create', 'before-1', '--out', out])).code).toBe(0)

    const rotated = await json<{ issuing: CaInfo; previous: CaInfo; serverCertificate: { serial: string }; paths: Record<string, string> }>(
      ['ca', 'rotate'],
    )
    expect(rotated.previous.serial).toBe(shown.issuing.serial)
    expect(rotated.issuing.serial).not.toBe(shown.issuing.serial)
    expect(rotated.issuing.fingerprint).toMatch(/^[0-9a-f]{64}$/)
    expect(rotated.paths).toMatchObject({
      chain: join(dataDir, 'ca', 'ca.pem'),
      previous: join(dataDir, 'ca', 'previous', shown.issuing.serial),
    })

    const after = await json<{ root: CaInfo; issuing: CaInfo; previous: CaInfo[] }>(['ca', 'show'])
    expect(after.root).toEqual(shown.root)
    expect(after.issuing.serial).toBe(rotated.issuing.serial)
    expect(after.previous).toEqual([expect.objectContaining({ serial: shown.issuing.serial, status: 'valid' })])

    expect((await cli(['device', 'create', 'after-1', '--out', out])).code).toBe(0)
    const chain = join(dataDir, 'ca', 'ca.pem')
    const both = await openssl(['verify', '-CAfile', chain, join(out, 'before-1', 'cert.pem'), join(out, 'after-1', 'cert.pem')])
    expect(both.stdout).toContain(`${join(out, 'before-1', 'cert.pem')}: OK`)
    expect(both.stdout).toContain(`${join(out, 'after-1', 'cert.pem')}: OK`)
    // the new device's bundle trusts both issuing CAs and the root
    expect(readFileSync(join(out, 'after-1', 'ca.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(3)
    const issuer = (await openssl(['x509', '-in', join(out, 'after-1', 'cert.pem'), '-noout', '-issuer'])).stdout
    expect(issuer).toMatch(/CN = Gatehouse Issuing CA, serialNumber = \d{8}T\d{6}Z/) // the new one, told apart by name too

    const audit = await json<{ action: string; actor: string; details: { serial: string; previousSerial: string } }[]>([
      'audit',
      '--action',
      'ca.rotated',
    ])
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'ca.rotated',
        details: expect.objectContaining({ serial: rotated.issuing.serial, previousSerial: shown.issuing.serial }),
      }),
    ])
    expect(audit[0]!.actor).toMatch(/^operator/)

    const text = await cli(['ca', 'rotate'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain(`previous issuing CA serial ${rotated.issuing.serial}`)
    expect(text.stderr).toContain('rotating the issuing CA')
    const shownText = (await cli(['ca', 'show'])).stdout
    expect(shownText.match(/^previous/gm)).toHaveLength(2)
  })

  it('needs GATEHOUSE_CA_PASSPHRASE for encrypted keys, and ca show does not', async () => {
    const env = { GATEHOUSE_CA_PASSPHRASE: 'correct horse' }
    const { dataDir } = await initialised(env)
    const missing = await runCli(['ca', 'rotate', '--data-dir', dataDir])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('error GH_CA_PASSPHRASE_REQUIRED')
    expect((await runCli(['ca', 'show', '--data-dir', dataDir])).code).toBe(0)
    const ok = await runCli(['ca', 'rotate', '--json', '--data-dir', dataDir], env)
    expect(ok.code, ok.stderr).toBe(0)
    expect(readFileSync(join(dataDir, 'ca', 'issuing.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY')
  })

  it('rotates to another key algorithm when asked', async () => {
    const { dataDir, json } = await initialised()
    await json(['ca', 'rotate', '--key-algorithm', 'p384'])
    const text = (await openssl(['x509', '-in', join(dataDir, 'ca', 'issuing.crt'), '-noout', '-text'])).stdout
    expect(text).toContain('secp384r1')
  })
})

describe('gatehouse crl after a rotation', () => {
  it("writes one CRL per issuing CA: the revoked old-CA device is on the old CA's CRL, which openssl verifies with the old CA", async () => {
    const { dir, dataDir, out, cli, json } = await initialised()
    const old = await json<{ serial: string }>(['device', 'create', 'old-1', '--out', out])
    const oldIssuing = join(out, 'old-1', 'ca.pem') // old issuing + root
    await json(['ca', 'rotate'])
    expect((await cli(['device', 'revoke', 'old-1', '--reason', 'keyCompromise'])).code).toBe(0)

    const listed = await json<{
      crlNumber: number
      entries: number
      issuerSerial: string
      pem: string
      previous: { entries: number; issuerSerial: string; pem: string }[]
    }>(['crl'])
    expect(listed.entries).toBe(0)
    expect(listed.previous).toEqual([expect.objectContaining({ entries: 1 })])

    const file = join(dir, 'crl.pem')
    const written = await cli(['crl', '--out', file])
    expect(written.code, written.stderr).toBe(0)
    expect(written.stdout.trim().split('\n')).toHaveLength(2)
    expect(readFileSync(file, 'utf8').match(/BEGIN X509 CRL/g)).toHaveLength(2)
    const revoked = await openssl([
      'verify',
      '-crl_check',
      '-CRLfile',
      file,
      '-CAfile',
      join(dataDir, 'ca', 'ca.pem'),
      join(out, 'old-1', 'cert.pem'),
    ])
    expect(revoked.stdout + revoked.stderr).toContain('certificate revoked')

    const der = join(dir, 'crl.der')
    const ders = await json<{ path: string; previous: { path: string; issuerSerial: string }[] }>(['crl', '--der', '--out', der])
    const previousDer = join(dir, `crl.${listed.previous[0]!.issuerSerial}.der`)
    expect(ders).toMatchObject({ path: der, previous: [{ path: previousDer }] })
    const text = (await openssl(['crl', '-inform', 'DER', '-in', previousDer, '-noout', '-text'])).stdout
    expect(text.toLowerCase()).toContain(old.serial)
    expect(text).toContain('Key Compromise')
    // signed by the old issuing CA (openssl takes the first certificate of the old bundle: the old issuing CA)
    const verified = await openssl(['crl', '-inform', 'DER', '-in', previousDer, '-noout', '-CAfile', oldIssuing])
    expect(verified.stdout + verified.stderr).toMatch(/verify OK/)
    expect(existsSync(der)).toBe(true)
  })
})
