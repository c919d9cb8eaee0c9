import { generatorCrypto, x509 } from './x509.ts'
import type * as X509 from '@peculiar/x509'
import type { X509Crl } from '@peculiar/x509'
import type { IssuerKeyPair } from './ca.ts'
import type { Clock } from './clock.ts'
import { CertValidityInvalid, CrlNumberInvalid, CrlReasonInvalid } from './errors.ts'
import { authorityKeyIdentifier } from './issue-certificate.ts'
import { signingAlgorithmFor } from './keys.ts'
import { normalizeSerial } from './peer-identity.ts'

/** RFC 5280 §5.3.1 reason names (removeFromCRL and aACompromise are not used by Gatehouse). */
export type CrlReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'caCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn'

// each reason's name in @peculiar/x509's X509CrlReason, read when a code is asked for (certs/x509.ts loads lazily)
const REASON_CODES: Readonly<Record<CrlReason, keyof typeof X509.X509CrlReason>> = {
  unspecified: 'unspecified',
  keyCompromise: 'keyCompromise',
  caCompromise: 'cACompromise',
  affiliationChanged: 'affiliationChanged',
  superseded: 'superseded',
  cessationOfOperation: 'cessationOfOperation',
  certificateHold: 'certificateHold',
  privilegeWithdrawn: 'privilegeWithdrawn',
}

export const CRL_REASONS: readonly CrlReason[] = Object.freeze(Object.keys(REASON_CODES) as CrlReason[])

export function isCrlReason(value: unknown): value is CrlReason {
  return typeof value === 'string' && Object.hasOwn(REASON_CODES, value)
}

/** The numeric RFC 5280 reason code of a reason name. */
export function crlReasonCode(reason: CrlReason): number {
  if (!isCrlReason(reason)) throw new CrlReasonInvalid(String(reason).slice(0, 80))
  return x509.X509CrlReason[REASON_CODES[reason]]
}

export interface CrlEntry {
  /** certificate serial, hex (any case, colons allowed) */
  serial: string
  revokedAt: Date
  reason: CrlReason
}

export const DEFAULT_CRL_VALID_HOURS = 7 * 24
const HOUR_MS = 3_600_000
const ID_CE_CRL_NUMBER = '2.5.29.20'
const MAX_CRL_NUMBER = 1n << 159n // RFC 5280 §5.2.3: at most 20 octets

/**
 * A v2 CRL signed by the issuer: AKI, CRL number, one entry per serial with its reason code
 * ("unspecified" is written as no reason code, as RFC 5280 §5.3.1 asks). thisUpdate = clock.now(),
 * nextUpdate = thisUpdate + validHours (default 7 days).
 */
export async function createCrl(
  issuer: IssuerKeyPair,
  req: { entries: readonly CrlEntry[]; crlNumber: bigint | number; validHours?: number },
  deps: { clock: Clock },
): Promise<X509Crl> {
  const crlNumber = toCrlNumber(req.crlNumber)
  const validHours = req.validHours ?? DEFAULT_CRL_VALID_HOURS
  if (typeof validHours !== 'number' || !Number.isFinite(validHours) || validHours <= 0) {
    throw new CertValidityInvalid(String(validHours))
  }
  const thisUpdate = new Date(Math.floor(deps.clock.now().getTime() / 1000) * 1000)
  const nextUpdate = new Date(thisUpdate.getTime() + Math.round(validHours * HOUR_MS))

  const seen = new Set<string>()
  const entries: X509.X509CrlEntryParams[] = []
  for (const e of req.entries) {
    const serial = normalizeSerial(e.serial)
    if (seen.has(serial)) continue
    seen.add(serial)
    entries.push({
      serialNumber: serial.length % 2 === 0 ? serial : `0${serial}`,
      revocationDate: e.revokedAt,
      reason: crlReasonCode(e.reason),
    })
  }

  return x509.X509CrlGenerator.create(
    {
      issuer: issuer.certificate.subjectName,
      thisUpdate,
      nextUpdate,
      signingKey: issuer.privateKey,
      signingAlgorithm: signingAlgorithmFor(issuer.privateKey),
      extensions: [await authorityKeyIdentifier(issuer.certificate), new x509.Extension(ID_CE_CRL_NUMBER, false, derInteger(crlNumber))],
      entries,
    },
    generatorCrypto(issuer.privateKey),
  )
}

/** The CRL number extension of a CRL, or undefined when it has none. */
export function crlNumberOf(crl: X509Crl): bigint | undefined {
  const ext = crl.getExtension(ID_CE_CRL_NUMBER)
  if (ext === null) return undefined
  const v = new Uint8Array(ext.value)
  if (v[0] !== 0x02) return undefined
  const len = v[1] ?? 0
  return BigInt(`0x${Buffer.from(v.subarray(2, 2 + len)).toString('hex') || '0'}`)
}

function toCrlNumber(n: bigint | number): bigint {
  const ok = typeof n === 'bigint' || (typeof n === 'number' && Number.isSafeInteger(n))
  const value = ok ? BigInt(n) : -1n
  if (value < 0n || value >= MAX_CRL_NUMBER) throw new CrlNumberInvalid(String(n))
  return value
}

/** DER INTEGER of a non-negative bigint (< 2^159, so the length fits in one octet). */
function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  if (Number.parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`
  const body = Buffer.from(hex, 'hex')
  return Uint8Array.from([0x02, body.length, ...body])
}
