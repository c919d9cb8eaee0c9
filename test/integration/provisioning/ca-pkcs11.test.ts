import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openssl, runCli } from '../../helpers/run-cli.ts'
import { createSoftHsmToken, describeWithSoftHsm, SOFTHSM_MODULE, type SoftHsmToken } from '../../helpers/softhsm.ts'

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
}

/** The token's private keys as node-webcrypto-p11 sees them, with the PKCS#11 attributes that keep them in. */
async function tokenPrivateKeys(token: SoftHsmToken) {
  const [graphene, { Crypto }] = await Promise.all([import('graphene-pk11'), import('node-webcrypto-p11')])
  const mod = graphene.Module.load(SOFTHSM_MODULE)
  try {
    mod.initialize()
  } catch {} // already initialised by Gatehouse in this process
  const slots = mod.getSlots(true)
  const slot = Array.from({ length: slots.length }, (_, i) => slots.items(i).getToken().label.trim()).indexOf(token.label)
  const crypto = new Crypto({ library: SOFTHSM_MODULE, slot, pin: token.pin })
  const indexes = (await crypto.keyStorage.keys()).filter((k) => k.startsWith('private-'))
  const keys = await Promise.all(indexes.map((i) => crypto.keyStorage.getItem(i)))
  return { crypto, keys }
}

// One token for this file: SoftHSM2 reads SOFTHSM2_CONF once per process, when the module is initialised.
describeWithSoftHsm('CA keys in a PKCS#11 token (SoftHSM2)', () => {
  let dir: string
  let token: SoftHsmToken
  let env: NodeJS.ProcessEnv
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli([...args, '--data-dir', join(dir, 'data')], { ...env, ...extra })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-pkcs11-'))
    token = createSoftHsmToken(dir)
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF
    env = { GATEHOUSE_PKCS11_PIN: token.pin }
    const init = await cli(['init', '--pkcs11-module', SOFTHSM_MODULE, '--pkcs11-token', token.label, '--json'])
    expect(init.code, init.stderr).toBe(0)
    expect(JSON.parse(init.stdout)).toMatchObject({ createdCa: true, pkcs11Token: token.label })
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('makes the root and issuing keys in the token, non-extractable, and keeps only references in the data directory', async () => {
    const ca = join(dir, 'data', 'ca')
    const refs = ['root.key', 'issuing.key'].map((f) => JSON.parse(readFileSync(join(ca, f), 'utf8')).pkcs11)
    for (const ref of refs)
      expect(ref).toEqual({
        module: SOFTHSM_MODULE,
        token: token.label,
        id: expect.stringMatching(/^[0-9a-f]+$/),
        label: expect.any(String),
        keyAlgorithm: 'p256',
      })
    expect(readdirSync(ca).filter((f) => f.endsWith('.key'))).toHaveLength(2)
    // no CA key material anywhere under ca/ (the broker's TLS server key is a file: server/server.key)
    for (const f of filesUnder(ca)) expect(readFileSync(f, 'utf8'), f).not.toContain('PRIVATE KEY')

    const { crypto, keys } = await tokenPrivateKeys(token)
    expect(keys.map((k) => k.p11Object.id.toString('hex')).sort()).toEqual(refs.map((r) => r.id).sort())
    for (const key of keys) {
      const object = key.p11Object as unknown as { extractable: boolean; sensitive: boolean }
      expect(object.extractable).toBe(false)
      expect(object.sensitive).toBe(true)
      await expect(crypto.subtle.exportKey('pkcs8', key)).rejects.toThrow(/extractable/i)
    }
  })

  it('issues a device certificate signed by the token key, which openssl verifies against the chain', async () => {
    const out = join(dir, 'devices')
    const created = await cli(['device', 'create', 'pump-hsm-1', '--out', out])
    expect(created.code, created.stderr).toBe(0)
    const verified = await openssl(['verify', '-CAfile', join(dir, 'data', 'ca', 'ca.pem'), join(out, 'pump-hsm-1', 'cert.pem')])
    expect(verified.stdout).toContain(': OK')
  })

  it('issues a batch, whose signatures run concurrently, through the one token session: every certificate verifies', async () => {
    const out = join(dir, 'batch')
    const batch = await cli(['device', 'create-batch', '--count', '12', '--prefix', 'tank-', '--out', out])
    expect(batch.code, batch.stderr).toBe(0)
    const files = readdirSync(out).map((id) => join(out, id, 'cert.pem'))
    expect(files).toHaveLength(12)
    const verified = await openssl(['verify', '-CAfile', join(dir, 'data', 'ca', 'ca.pem'), ...files])
    expect(verified.stdout.match(/: OK/g)).toHaveLength(12)
  })

  it('signs the CRL with the token key (openssl crl -verify), a revoked device on it', async () => {
    const out = join(dir, 'devices')
    expect((await cli(['device', 'create', 'pump-hsm-2', '--out', out])).code).toBe(0)
    expect((await cli(['device', 'revoke', 'pump-hsm-2'])).code).toBe(0)
    const crlFile = join(dir, 'crl.pem')
    const crl = await cli(['crl', '--out', crlFile])
    expect(crl.code, crl.stderr).toBe(0)
    const checked = await openssl(['crl', '-in', crlFile, '-CAfile', join(dir, 'data', 'ca', 'ca.pem'), '-noout', '-verify'])
    expect(checked.stderr).toContain('verify OK')
    const serial = (await openssl(['x509', '-in', join(out, 'pump-hsm-2', 'cert.pem'), '-noout', '-serial'])).stdout.split('=')[1]!.trim()
    expect((await openssl(['crl', '-in', crlFile, '-noout', '-text'])).stdout.toUpperCase()).toContain(serial.toUpperCase())
  })

  it('ca rotate makes the new issuing key in the same token; devices from both issuing CAs verify', async () => {
    const ca = join(dir, 'data', 'ca')
    const before = JSON.parse(readFileSync(join(ca, 'issuing.key'), 'utf8')).pkcs11
    const rotated = await cli(['ca', 'rotate', '--json'])
    expect(rotated.code, rotated.stderr).toBe(0)
    const after = JSON.parse(readFileSync(join(ca, 'issuing.key'), 'utf8')).pkcs11
    expect(after).toMatchObject({ module: SOFTHSM_MODULE, token: token.label, keyAlgorithm: 'p256' })
    expect(after.id).not.toBe(before.id)
    const serial = JSON.parse(rotated.stdout).previous.serial as string
    expect(JSON.parse(readFileSync(join(ca, 'previous', serial, 'issuing.key'), 'utf8')).pkcs11).toEqual(before)
    const { keys } = await tokenPrivateKeys(token)
    expect(keys.map((k) => k.p11Object.id.toString('hex'))).toContain(after.id)
    expect(keys).toHaveLength(3) // root, the first issuing CA, the new one

    const out = join(dir, 'devices')
    expect((await cli(['device', 'create', 'pump-hsm-3', '--out', out])).code).toBe(0)
    const chain = join(ca, 'ca.pem')
    const both = await openssl(['verify', '-CAfile', chain, join(out, 'pump-hsm-1', 'cert.pem'), join(out, 'pump-hsm-3', 'cert.pem')])
    expect(both.stdout).toContain(`${join(out, 'pump-hsm-1', 'cert.pem')}: OK`)
    expect(both.stdout).toContain(`${join(out, 'pump-hsm-3', 'cert.pem')}: OK`)
    // the CRLs of both issuing CAs are signed in the token too
    const crlFile = join(dir, 'crl-after.pem')
    expect((await cli(['crl', '--out', crlFile])).code).toBe(0)
    expect((await openssl(['crl', '-in', crlFile, '-CAfile', chain, '-noout', '-verify'])).stderr).toContain('verify OK')
  })

  it('keeps the PIN out of every file of the data directory and of the fleet checks', async () => {
    for (const f of filesUnder(join(dir, 'data'))) expect(readFileSync(f).includes(token.pin), f).toBe(false)
    const check = await cli(['check', '--json'])
    expect(check.stdout).not.toContain(token.pin)
    // a key reference is not an unencrypted key: only the broker's TLS key (a file, no passphrase here) is reported
    const findings = JSON.parse(check.stdout).findings as { id: string; objects: { ids: string[] } }[]
    expect(findings.find((f) => f.id === 'ca-key-unencrypted')?.objects.ids).toEqual([join(dir, 'data', 'server', 'server.key')])
  })
})
