import { generateKeyPairSync, webcrypto } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  KEY_ALGORITHMS,
  exportPrivateKeyPkcs8,
  generateKeyPair,
  keyAlgorithmOf,
  privateKeyFromPem,
  privateKeyToPem,
  type CryptoKey,
  type KeyAlgorithm,
} from '../../../certs/index.ts'

const data = new TextEncoder().encode('gatehouse')

async function signsLike(privateKey: CryptoKey, publicKey: CryptoKey): Promise<boolean> {
  const alg = privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' }
  const sig = await webcrypto.subtle.sign(alg, privateKey, data)
  return webcrypto.subtle.verify(alg, publicKey, sig, data)
}

describe('generateKeyPair', () => {
  it('lists the supported algorithms, p256 first (the default)', () => {
    expect(KEY_ALGORITHMS).toEqual(['p256', 'p384', 'rsa2048', 'rsa3072', 'rsa4096'])
  })

  // rsa4096 is left out: its key generation alone takes seconds.
  it.each(['p256', 'p384', 'rsa2048', 'rsa3072'] as const)('makes an extractable %s sign/verify pair', async (alg) => {
    const { privateKey, publicKey } = await generateKeyPair(alg)
    expect(keyAlgorithmOf(privateKey)).toBe(alg)
    expect(keyAlgorithmOf(publicKey)).toBe(alg)
    expect(privateKey.extractable).toBe(true)
    expect(privateKey.usages).toEqual(['sign'])
    expect(publicKey.usages).toEqual(['verify'])
    expect(await signsLike(privateKey, publicKey)).toBe(true)
  })

  it('defaults to P-256', async () => {
    const { privateKey } = await generateKeyPair()
    expect(privateKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' })
  })

  it('refuses an unknown algorithm', async () => {
    await expect(generateKeyPair('dsa1024' as KeyAlgorithm)).rejects.toMatchObject({ code: 'GH_KEY_ALGORITHM_UNSUPPORTED' })
  })
})

describe('private key PEM', () => {
  it.each(['p256', 'p384', 'rsa2048'] as const)('round-trips a %s key without a passphrase', async (alg) => {
    const { privateKey, publicKey } = await generateKeyPair(alg)
    const pem = await privateKeyToPem(privateKey)
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    const back = await privateKeyFromPem(pem)
    expect(keyAlgorithmOf(back)).toBe(alg)
    expect(await exportPrivateKeyPkcs8(back)).toEqual(await exportPrivateKeyPkcs8(privateKey))
    expect(await signsLike(back, publicKey)).toBe(true)
  })

  it('encrypts with a passphrase and reads the key back with it', async () => {
    const { privateKey } = await generateKeyPair('p256')
    const pem = await privateKeyToPem(privateKey, 'correct horse')
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/)
    const back = await privateKeyFromPem(pem, { passphrase: 'correct horse' })
    expect(await exportPrivateKeyPkcs8(back)).toEqual(await exportPrivateKeyPkcs8(privateKey))
  })

  it('asks for the passphrase of an encrypted key (GH_KEY_PASSPHRASE_REQUIRED)', async () => {
    const pem = await privateKeyToPem((await generateKeyPair()).privateKey, 'pw')
    await expect(privateKeyFromPem(pem)).rejects.toMatchObject({ code: 'GH_KEY_PASSPHRASE_REQUIRED' })
  })

  it('refuses a wrong passphrase (GH_KEY_PASSPHRASE_WRONG)', async () => {
    const pem = await privateKeyToPem((await generateKeyPair()).privateKey, 'pw')
    await expect(privateKeyFromPem(pem, { passphrase: 'not-pw' })).rejects.toMatchObject({ code: 'GH_KEY_PASSPHRASE_WRONG' })
    await expect(privateKeyFromPem(pem, { passphrase: '' })).rejects.toMatchObject({ code: 'GH_KEY_PASSPHRASE_WRONG' })
  })

  it.each([
    ['fail/garbage', 'not a key'],
    ['fail/empty', ''],
    ['fail/bad-base64-body', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    ['fail/certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
  ])('%s is GH_KEY_INVALID', async (_name, pem) => {
    await expect(privateKeyFromPem(pem)).rejects.toMatchObject({ code: 'GH_KEY_INVALID' })
  })

  it('reads SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY" PEMs', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'sec1', format: 'pem' })
    expect(keyAlgorithmOf(await privateKeyFromPem(ec as string))).toBe('p384')
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' })
    expect(keyAlgorithmOf(await privateKeyFromPem(rsa as string))).toBe('rsa2048')
  })

  it('refuses a key of another algorithm (GH_KEY_ALGORITHM_UNSUPPORTED)', async () => {
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' })
    await expect(privateKeyFromPem(ed as string)).rejects.toMatchObject({ code: 'GH_KEY_ALGORITHM_UNSUPPORTED' })
  })
})
