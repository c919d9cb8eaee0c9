import { createPublicKey, webcrypto } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createKeyAndCsr, generateKeyPair, parseCsr, privateKeyFromPem } from '../../../certs/index.ts'
import { createCsrPem } from '../../../certs/create-csr.ts'
import { x509 } from '../../../certs/x509.ts'

describe('createCsrPem / createKeyAndCsr', () => {
  it.each([
    ['ok/p256', 'p256', 'SHA-256'],
    ['ok/p384', 'p384', 'SHA-384'],
    ['ok/rsa2048', 'rsa2048', 'SHA-256'],
  ] as const)('%s: makes a CSR that parseCsr accepts for that device id', async (_name, alg, hash) => {
    const keys = await generateKeyPair(alg)
    const pem = await createCsrPem({ commonName: 'pump-0042', keys })
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/)
    const parsed = await parseCsr(pem, { expectedDeviceId: 'pump-0042' })
    expect(parsed).toMatchObject({ commonName: 'pump-0042', keyAlgorithm: alg })
    const request = new x509.Pkcs10CertificateRequest(pem)
    expect((request.signatureAlgorithm as { hash?: { name?: string } }).hash?.name).toBe(hash)
  })

  it('signs with the key it carries: the CSR holds the public key of the pair', async () => {
    const keys = await generateKeyPair('p256')
    const request = new x509.Pkcs10CertificateRequest(await createCsrPem({ commonName: 'd-1', keys }))
    const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey))
    expect(Buffer.from(request.publicKey.rawData).equals(spki)).toBe(true)
    expect(await request.verify()).toBe(true)
  })

  it('refuses nothing by itself: a CN that is not a device id is caught by parseCsr (GH_DEVICE_ID_INVALID)', async () => {
    const keys = await generateKeyPair('p256')
    await expect(parseCsr(await createCsrPem({ commonName: 'no/slashes', keys }))).rejects.toMatchObject({ code: 'GH_DEVICE_ID_INVALID' })
  })

  it('createKeyAndCsr makes a new P-256 key by default, with its PKCS#8 PEM matching the CSR', async () => {
    const made = await createKeyAndCsr({ commonName: 'sim-0001' })
    expect(made.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/)
    const key = await privateKeyFromPem(made.privateKeyPem)
    expect(key.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' })
    const fromPrivate = createPublicKey(made.privateKeyPem).export({ type: 'spki', format: 'der' })
    const request = new x509.Pkcs10CertificateRequest(made.csrPem)
    expect(Buffer.from(request.publicKey.rawData).equals(fromPrivate)).toBe(true)
    const other = await createKeyAndCsr({ commonName: 'sim-0001' })
    expect(other.privateKeyPem).not.toBe(made.privateKeyPem)
  })
})
