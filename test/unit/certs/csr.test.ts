import { describe, expect, it } from 'vitest'
import { keyAlgorithmOf, parseCsr, cryptoRandom } from '../../../certs/index.ts'
import { csrChecks } from '../../../certs/csr.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa, makeTestCsr, type TestCsrOptions } from '../../helpers/test-ca.ts'

type Input = string | Uint8Array
const pem =
  (o: TestCsrOptions = {}) =>
  async (): Promise<Input> =>
    (await makeTestCsr(o)).pem

/** A signed CSR whose CN was changed after signing: still parses, signature no longer matches. */
async function tampered(): Promise<Input> {
  const { der } = await makeTestCsr({ commonName: 'dev-1' })
  const at = Buffer.from(der).indexOf('dev-1')
  const copy = Uint8Array.from(der)
  copy[at + 4] = '2'.charCodeAt(0) // dev-1 -> dev-2
  return copy
}

/** SEQUENCE { SEQUENCE { ... } } n deep, in BER's indefinite-length form (2 bytes a level, under the 60 KiB bound). */
function nestedDer(n: number): Uint8Array {
  return Uint8Array.from([...Array(n).fill([0x30, 0x80]).flat(), 0x05, 0x00, ...Array(n).fill([0x00, 0x00]).flat()])
}

describe('parseCsr', () => {
  it.each<[string, () => Promise<Input>, { expectedDeviceId?: string }, string | null]>([
    ['ok/p256', pem({ key: 'p256' }), { expectedDeviceId: 'dev-1' }, null],
    ['ok/p384', pem({ key: 'p384' }), {}, null],
    ['ok/rsa2048', pem({ key: 'rsa2048' }), { expectedDeviceId: 'dev-1' }, null],
    ['ok/der', async () => (await makeTestCsr()).der, {}, null],
    ['ok/pem-bytes', async () => new TextEncoder().encode((await makeTestCsr()).pem), {}, null],
    [
      'ok/new-certificate-request-label',
      async () => (await makeTestCsr()).pem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST'),
      {},
      null,
    ],
    ['ok/sha512', pem({ hash: 'SHA-512' }), {}, null],
    ['fail/rsa-1024', pem({ key: 'rsa1024' }), {}, 'GH_CSR_WEAK_KEY'],
    ['fail/ed25519', pem({ key: 'ed25519' }), {}, 'GH_CSR_KEY_UNSUPPORTED'],
    ['fail/p521', pem({ key: 'p521' }), {}, 'GH_CSR_KEY_UNSUPPORTED'],
    ['fail/cn-mismatch', pem({ commonName: 'dev-2' }), { expectedDeviceId: 'dev-1' }, 'GH_CSR_CN_MISMATCH'],
    ['fail/cn-missing', pem({ commonName: null }), {}, 'GH_CSR_CN_MISSING'],
    ['fail/cn-twice', pem({ commonName: ['dev-1', 'admin'] }), {}, 'GH_CSR_CN_MULTIPLE'],
    ['fail/cn-not-a-device-id', pem({ commonName: 'devices/+' }), {}, 'GH_DEVICE_ID_INVALID'],
    ['fail/bad-signature', tampered, {}, 'GH_CSR_BAD_SIGNATURE'],
    ['fail/sha1-signature', pem({ hash: 'SHA-1' }), {}, 'GH_CSR_BAD_SIGNATURE'],
    ['fail/garbage', async () => 'hello', {}, 'GH_CSR_UNPARSABLE'],
    ['fail/garbage-der', async () => new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), {}, 'GH_CSR_UNPARSABLE'],
    ['fail/empty', async () => '', {}, 'GH_CSR_UNPARSABLE'],
    [
      'fail/garbage-in-pem',
      async () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      {},
      'GH_CSR_UNPARSABLE',
    ],
    ['fail/certificate-pem', async () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', {}, 'GH_CSR_UNPARSABLE'],
    ['fail/too-large', async () => 'x'.repeat(70_000), {}, 'GH_CSR_UNPARSABLE'],
    ['fail/truncated-pem', async () => (await makeTestCsr()).pem.slice(0, 200), {}, 'GH_CSR_UNPARSABLE'],
    ['fail/truncated-der', async () => (await makeTestCsr()).der.slice(0, 100), {}, 'GH_CSR_UNPARSABLE'],
    ['fail/der-length-lies', async () => Uint8Array.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00]), {}, 'GH_CSR_UNPARSABLE'],
    ['fail/ber-nested-10000-deep', async () => nestedDer(10_000), {}, 'GH_CSR_UNPARSABLE'],
    [
      'fail/private-key-pem',
      async () => '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n',
      {},
      'GH_CSR_UNPARSABLE',
    ],
    ['fail/two-csrs', async () => (await makeTestCsr()).pem + (await makeTestCsr({ commonName: 'dev-2' })).pem, {}, 'GH_CSR_UNPARSABLE'],
  ])('%s', async (_name, make, opts, code) => {
    const input = await make()
    if (code === null) {
      const parsed = await parseCsr(input, opts)
      expect(parsed.commonName).toBe('dev-1')
      expect(keyAlgorithmOf(parsed.publicKey)).toBe(parsed.keyAlgorithm)
      expect(parsed.publicKey.type).toBe('public')
      expect(parsed.der[0]).toBe(0x30)
    } else {
      await expect(parseCsr(input, opts)).rejects.toMatchObject({ code })
    }
  })

  it('reports the key algorithm of the CSR', async () => {
    expect((await parseCsr((await makeTestCsr({ key: 'p384' })).pem, {})).keyAlgorithm).toBe('p384')
    expect((await parseCsr((await makeTestCsr({ key: 'rsa2048' })).der, {})).keyAlgorithm).toBe('rsa2048')
  })

  it('gives a public key a device certificate can be issued for', async () => {
    const ca = await makeTestCa()
    const { publicKey, commonName } = await parseCsr((await makeTestCsr()).pem, { expectedDeviceId: 'dev-1' })
    const cert = await issueDeviceCertificate(
      ca.issuing,
      { deviceId: commonName, publicKey },
      { clock: fixedClock(), random: cryptoRandom },
    )
    expect(cert.subject).toBe('CN=dev-1')
  })

  it('checks the key before the signature: a weak key is named as such even when the signature is bad', async () => {
    const { der } = await makeTestCsr({ key: 'rsa1024', commonName: 'dev-1' })
    const copy = Uint8Array.from(der)
    copy[Buffer.from(der).indexOf('dev-1') + 4] = '2'.charCodeAt(0)
    await expect(parseCsr(copy, {})).rejects.toMatchObject({ code: 'GH_CSR_WEAK_KEY' })
  })

  it('exposes its rules as a list of checks that each throw one coded error', async () => {
    const checks = csrChecks({ expectedDeviceId: 'dev-1' })
    expect(checks).toHaveLength(5)
    expect(checks[0]?.name).toBe('keyIsAllowed')
  })
})
