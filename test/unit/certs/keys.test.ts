import { KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import {
  KEY_ALGORITHMS,
  exportPrivateKeyPkcs8,
  generateKeyObjects,
  generateKeyPair,
  keyAlgorithmOf,
  pkcs8ToPem,
  privateKeyFromPem,
  privateKeyToPem,
  type CryptoKey,
  type KeyAlgorithm,
} from '../../../certs/index.ts'
import { ecPublicPoint, type CryptoKeyPair } from '../../../certs/keys.ts'

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

describe('generateKeyObjects', () => {
  it.each([
    ['p256', 'ec', 'prime256v1'],
    ['p384', 'ec', 'secp384r1'],
    ['rsa2048', 'rsa', undefined],
  ] as const)('makes a %s node:crypto key pair', async (alg, type, curve) => {
    const { publicKey, privateKey } = await generateKeyObjects(alg)
    expect(publicKey).toBeInstanceOf(KeyObject)
    expect([publicKey.type, privateKey.type]).toEqual(['public', 'private'])
    expect(privateKey.asymmetricKeyType).toBe(type)
    if (curve) expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe(curve)
    else expect(privateKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n })
    expect(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })).toEqual(publicKey.export({ type: 'spki', format: 'der' }))
  })

  it('refuses an unknown algorithm', async () => {
    await expect(generateKeyObjects('dsa1024' as KeyAlgorithm)).rejects.toMatchObject({ code: 'GH_KEY_ALGORITHM_UNSUPPORTED' })
  })
})

describe('exportPrivateKeyPkcs8', () => {
  // EC keys are encoded from their JWK rather than by OpenSSL: the bytes must be OpenSSL's.
  it.each(['P-256', 'P-384'] as const)('writes exactly what OpenSSL writes for %s keys, CryptoKey or KeyObject', async (namedCurve) => {
    for (let i = 0; i < 25; i++) {
      const { privateKey } = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve }, true, ['sign', 'verify'])) as CryptoKeyPair
      const openssl = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', privateKey))
      expect(await exportPrivateKeyPkcs8(privateKey)).toEqual(openssl)
      expect(await exportPrivateKeyPkcs8(KeyObject.from(privateKey))).toEqual(openssl)
    }
  })

  it('writes what OpenSSL writes for an imported SEC1 key (which carries its curve twice) and for RSA keys', async () => {
    const sec1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string
    const imported = await privateKeyFromPem(sec1)
    expect(await exportPrivateKeyPkcs8(imported)).toEqual(new Uint8Array(createPrivateKey(sec1).export({ type: 'pkcs8', format: 'der' })))
    const rsa = await generateKeyObjects('rsa2048')
    expect(await exportPrivateKeyPkcs8(rsa.privateKey)).toEqual(new Uint8Array(rsa.privateKey.export({ type: 'pkcs8', format: 'der' })))
  })

  it('gives a PEM identical to the one node:crypto writes (pkcs8ToPem)', async () => {
    for (const alg of ['p256', 'p384', 'rsa2048'] as const) {
      const { privateKey } = await generateKeyObjects(alg)
      const pem = pkcs8ToPem(await exportPrivateKeyPkcs8(privateKey))
      expect(pem).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }))
      expect(createPrivateKey(pem).export({ format: 'jwk' })).toEqual(privateKey.export({ format: 'jwk' }))
    }
  })
})

describe('a generated key pair, exported (issue 14)', () => {
  // the export methods of public and private KeyObjects: the first call on a fresh pair costs OpenSSL a legacy-key conversion
  function exportSpies() {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const spies = [pair.publicKey, pair.privateKey].map((key) => {
      let proto = Object.getPrototypeOf(key)
      while (proto !== null && !Object.hasOwn(proto, 'export')) proto = Object.getPrototypeOf(proto)
      return vi.spyOn(proto as KeyObject, 'export')
    })
    return {
      calls: () => spies.reduce((n, spy) => n + spy.mock.calls.length, 0),
      restore: () => {
        for (const spy of spies) spy.mockRestore()
      },
    }
  }

  it.each(['p256', 'p384'] as const)(
    'exports a %s pair once for its public point and its PKCS#8, and gives the same bytes',
    async (alg) => {
      const { publicKey, privateKey } = await generateKeyObjects(alg)
      const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }))
      const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }))
      const exports = exportSpies()
      try {
        const point = await ecPublicPoint(publicKey)
        expect(await exportPrivateKeyPkcs8(privateKey)).toEqual(pkcs8)
        expect(await ecPublicPoint(privateKey)).toEqual(point)
        expect(exports.calls()).toBe(1)
        expect(point).toEqual(spki.subarray(spki.length - point.length))
        // the private part is not kept past its PKCS#8: asked again, the key is exported again, the same
        expect(await exportPrivateKeyPkcs8(privateKey)).toEqual(pkcs8)
        expect(exports.calls()).toBe(2)
      } finally {
        exports.restore()
      }
    },
  )
})
