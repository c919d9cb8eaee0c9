import { describe, expect, it } from 'vitest'
import { CRL_REASONS, createCrl, crlToDer, crlToPem, generateKeyPair, cryptoRandom, type CrlReason } from '../../../certs/index.ts'
import { crlNumberOf, crlReasonCode } from '../../../certs/crl.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { x509 } from '../../../certs/x509.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const T0 = '2026-01-01T00:00:00Z'
const HOUR = 3_600_000

describe('createCrl', () => {
  it('lists each revoked serial with its date and reason, as a v2 CRL', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock(T0)
    const { publicKey } = await generateKeyPair()
    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: 'dev-1', publicKey }, { clock, random: cryptoRandom })
    const revokedAt = clock.advance('1h')
    const crl = await createCrl(
      ca.issuing,
      {
        entries: [
          { serial: cert.serialNumber.toUpperCase(), revokedAt, reason: 'keyCompromise' },
          { serial: '00:0A', revokedAt, reason: 'superseded' },
          { serial: 'ff', revokedAt, reason: 'unspecified' },
        ],
        crlNumber: 7n,
      },
      { clock },
    )
    expect(crl.version).toBe(1) // v2
    expect(crl.issuer).toBe(ca.issuing.certificate.subject)
    const byCert = crl.findRevoked(cert)
    expect(byCert?.reason).toBe(x509.X509CrlReason.keyCompromise)
    expect(byCert?.revocationDate).toEqual(revokedAt)
    expect(crl.findRevoked('0a')?.reason).toBe(x509.X509CrlReason.superseded)
    expect(crl.findRevoked('ff')?.reason).toBeUndefined() // RFC 5280: omit the code rather than write unspecified
    expect(crl.entries).toHaveLength(3)
    expect(crlNumberOf(crl)).toBe(7n)
  })

  it('takes thisUpdate from the clock and sets nextUpdate 7 days later (or validHours)', async () => {
    const ca = await makeTestCa()
    const clock = fixedClock(T0)
    clock.advance('61s')
    const crl = await createCrl(ca.issuing, { entries: [], crlNumber: 1 }, { clock })
    expect(crl.thisUpdate).toEqual(clock.now())
    expect(crl.nextUpdate?.getTime()).toBe(clock.now().getTime() + 168 * HOUR)
    const daily = await createCrl(ca.issuing, { entries: [], crlNumber: 2, validHours: 24 }, { clock })
    expect(daily.nextUpdate?.getTime()).toBe(clock.now().getTime() + 24 * HOUR)
  })

  it('is signed by the issuing CA and names its key (AKI)', async () => {
    const ca = await makeTestCa()
    const crl = await createCrl(ca.issuing, { entries: [], crlNumber: 3 }, { clock: fixedClock(T0) })
    expect(await crl.verify({ publicKey: ca.issuing.certificate })).toBe(true)
    expect(await crl.verify({ publicKey: ca.root.certificate })).toBe(false)
    expect(crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      ca.issuing.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    )
  })

  it('writes a serial only once, and encodes large CRL numbers', async () => {
    const ca = await makeTestCa()
    const at = new Date(T0)
    const crl = await createCrl(
      ca.issuing,
      {
        entries: [
          { serial: 'abc', revokedAt: at, reason: 'superseded' },
          { serial: '0ABC', revokedAt: at, reason: 'keyCompromise' },
        ],
        crlNumber: 2n ** 100n,
      },
      { clock: fixedClock(T0) },
    )
    expect(crl.entries).toHaveLength(1)
    expect(crlNumberOf(crl)).toBe(2n ** 100n)
  })

  it('encodes as PEM and DER', async () => {
    const ca = await makeTestCa()
    const crl = await createCrl(ca.issuing, { entries: [], crlNumber: 128 }, { clock: fixedClock(T0) })
    expect(crlToPem(crl)).toMatch(/^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/)
    expect(crlNumberOf(new x509.X509Crl(crlToDer(crl).slice().buffer))).toBe(128n)
  })

  it('maps every reason name to its RFC 5280 code', () => {
    expect(Object.fromEntries(CRL_REASONS.map((r) => [r, crlReasonCode(r)]))).toEqual({
      unspecified: 0,
      keyCompromise: 1,
      caCompromise: 2,
      affiliationChanged: 3,
      superseded: 4,
      cessationOfOperation: 5,
      certificateHold: 6,
      privilegeWithdrawn: 9,
    })
  })

  it.each([
    [
      'fail/unknown-reason',
      { entries: [{ serial: '01', revokedAt: new Date(T0), reason: 'lost' as CrlReason }], crlNumber: 1 },
      'GH_CRL_REASON_INVALID',
    ],
    [
      'fail/bad-serial',
      { entries: [{ serial: 'xyz', revokedAt: new Date(T0), reason: 'superseded' as const }], crlNumber: 1 },
      'GH_SERIAL_INVALID',
    ],
    ['fail/negative-number', { entries: [], crlNumber: -1 }, 'GH_CRL_NUMBER_INVALID'],
    ['fail/fractional-number', { entries: [], crlNumber: 1.5 }, 'GH_CRL_NUMBER_INVALID'],
    ['fail/huge-number', { entries: [], crlNumber: 2n ** 159n }, 'GH_CRL_NUMBER_INVALID'],
    ['fail/zero-hours', { entries: [], crlNumber: 1, validHours: 0 }, 'GH_CERT_VALIDITY_INVALID'],
  ])('%s', async (_name, req, code) => {
    const ca = await makeTestCa()
    await expect(createCrl(ca.issuing, req, { clock: fixedClock(T0) })).rejects.toMatchObject({ code })
  })
})
