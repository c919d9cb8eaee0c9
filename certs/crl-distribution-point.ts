import type { X509Certificate } from '@peculiar/x509'
import { authorityKeyIdentifier } from './issue-certificate.ts'
import { x509 } from './x509.ts'
import type * as X509 from '@peculiar/x509'

/**
 * An issuing CA's key identifier, lowercase hex: its subject key identifier (what the certificates it
 * signs carry as their AKI), or the SHA-1 of its key when it has none. It names the CA's CRL on the
 * HTTP server (`/crl/<key id>.crl`), so the name survives a re-issue of the same key and differs per key.
 */
export async function issuerKeyId(issuer: X509Certificate): Promise<string> {
  return ((await authorityKeyIdentifier(issuer)).keyId ?? '').toLowerCase()
}

/** Where relying parties fetch an issuer's CRL: `<base URL>/crl/<issuer key id>.crl` (a trailing `/` on the base is dropped). */
export function crlUrl(baseUrl: string, keyId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/crl/${keyId}.crl`
}

/** The CRL Distribution Points extension (RFC 5280 §4.2.1.13, not critical) with one URI: the issuer's CRL. */
export function crlDistributionPoints(url: string): X509.Extension {
  return new x509.CRLDistributionPointsExtension([url], false)
}

let lastDer: { url: string; der: Uint8Array } | undefined

/** The same extension as DER, for certificates built straight to DER; one URL per issuer, so the last one is kept. */
export function crlDistributionPointsDer(url: string): Uint8Array {
  if (lastDer?.url !== url) lastDer = { url, der: new Uint8Array(crlDistributionPoints(url).rawData) }
  return lastDer.der
}
