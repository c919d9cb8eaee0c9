// PEM text (RFC 7468) for DER bytes: base64 in 64-character lines between BEGIN/END labels.

/** `-----BEGIN <label>-----`, base64 wrapped at 64 columns, `-----END <label>-----`, trailing newline. */
export function derToPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der)
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  let body = ''
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`
}
