import { webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createCertificateAuthority,
  cryptoRandom,
  generateKeyPair,
  type CertificateAuthority,
  type Clock,
  type KeyAlgorithm,
  type Random,
} from '../../certs/index.ts'
import type { CryptoKeyPair } from '../../certs/keys.ts'
import { x509 } from '../../certs/x509.ts'
import { fixedClock } from './clock.ts'

export interface TestCaOptions {
  keyAlgorithm?: KeyAlgorithm
  /** default fixedClock('2026-01-01T00:00:00Z'); pass systemClock for real TLS handshakes */
  clock?: Clock
  random?: Random
  name?: string
  /** default true when only keyAlgorithm is given: one CA per algorithm per test file (module) */
  cache?: boolean
}

const cache = new Map<KeyAlgorithm, Promise<CertificateAuthority>>()

/**
 * A two-tier test CA. With default options it is cached per key algorithm for the test file, since key
 * generation (RSA above all) is the slow part; pass a clock or a name for a fresh one.
 */
export function makeTestCa(opts: TestCaOptions = {}): Promise<CertificateAuthority> {
  const alg = opts.keyAlgorithm ?? 'p256'
  const cacheable = opts.cache ?? (opts.clock === undefined && opts.random === undefined && opts.name === undefined)
  const make = () =>
    createCertificateAuthority(
      { keyAlgorithm: alg, ...(opts.name !== undefined && { name: opts.name }) },
      { clock: opts.clock ?? fixedClock(), random: opts.random ?? cryptoRandom },
    )
  if (!cacheable) return make()
  let ca = cache.get(alg)
  if (ca === undefined) {
    ca = make()
    cache.set(alg, ca)
  }
  return ca
}

/** A temp directory for files that external tools (openssl) read; remove it with cleanup(). */
export interface TempPemDir {
  dir: string
  /** writes a file (PEM text or DER bytes) and returns its path */
  write(name: string, data: string | Uint8Array): string
  cleanup(): void
}

export function makeTempPemDir(prefix = 'gatehouse-certs-'): TempPemDir {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    write(name, data) {
      const path = join(dir, name)
      writeFileSync(path, data, { mode: 0o600 })
      return path
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** Writes one PEM (or DER) file into dir and returns its path. */
export function writeTempPem(dir: string, name: string, data: string | Uint8Array): string {
  const path = join(dir, name)
  writeFileSync(path, data, { mode: 0o600 })
  return path
}

export type TestCsrKey = KeyAlgorithm | 'rsa1024' | 'p521' | 'ed25519'

export interface TestCsrOptions {
  /** one CN, several CNs, or none (null) */
  commonName?: string | string[] | null
  key?: TestCsrKey
  /** signature hash, default SHA-256 (SHA-384 for P-384 / P-521) */
  hash?: 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512'
}

export interface TestCsr {
  pem: string
  der: Uint8Array
  keys: CryptoKeyPair
}

/** A PKCS#10 CSR made with @peculiar/x509's generator, as a device would make one. */
export async function makeTestCsr(opts: TestCsrOptions = {}): Promise<TestCsr> {
  const key = opts.key ?? 'p256'
  const keys = await testCsrKeys(key)
  const hash = opts.hash ?? (key === 'p384' || key === 'p521' ? 'SHA-384' : 'SHA-256')
  const signingAlgorithm =
    key === 'ed25519' ? { name: 'Ed25519' } : key.startsWith('rsa') ? { name: 'RSASSA-PKCS1-v1_5', hash } : { name: 'ECDSA', hash }
  const cn = opts.commonName === undefined ? 'dev-1' : opts.commonName
  const name = cn === null ? [{ O: ['No CN Inc'] }] : [{ CN: Array.isArray(cn) ? cn : [cn] }]
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm })
  return { pem: csr.toString('pem'), der: new Uint8Array(csr.rawData), keys }
}

async function testCsrKeys(key: TestCsrKey): Promise<CryptoKeyPair> {
  const usages = ['sign', 'verify'] as const
  switch (key) {
    case 'rsa1024':
      return (await webcrypto.subtle.generateKey(
        { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        true,
        [...usages],
      )) as CryptoKeyPair
    case 'p521':
      return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, [...usages])) as CryptoKeyPair
    case 'ed25519':
      return (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, [...usages])) as CryptoKeyPair
    default:
      return generateKeyPair(key)
  }
}
