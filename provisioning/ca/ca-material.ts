import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto'
import type { Random } from '../../certs/index.ts'
import { CaSyncRefused, CaSyncSecretMissing, CaSyncSecretWrong } from '../errors.ts'
import { isKeyReference } from './pkcs11-token.ts'

/**
 * The CA material a rotation on a shared registry (PostgreSQL) leaves in the database for the other nodes
 * (docs/device-lifecycle.md, "CA rotation"): meta row `ca.material`, written in the transaction of the
 * `ca.rotated` event. It holds the issuing CAs a node needs to sign and to serve the chain: the new issuing CA
 * and the previous ones still valid, each as its certificate (in clear) and its key file, never in clear: a
 * key file that holds a key is sealed with AES-256-GCM under a key derived from the cluster's CA sync secret
 * (caSyncSecretFile), its serial as additional data; a key file that names a PKCS#11 token (no secret in it)
 * is kept as it is. The root CA's key never leaves the machine that holds it.
 */
export const CA_MATERIAL_KEY = 'ca.material'

export interface CaIssuerFiles {
  serial: string
  /** the certificate, PEM */
  cert: string
  /** the key file as stored in ca/: PKCS#8 PEM (encrypted with the CA passphrase when set) or a PKCS#11 reference */
  keyFile: string
}

type KeyBlob = { reference: string } | { sealed: { iv: string; tag: string; data: string } }
interface StoredIssuer {
  serial: string
  cert: string
  key: KeyBlob
}
export interface CaMaterial {
  v: 1
  issuing: StoredIssuer
  previous: StoredIssuer[]
}

function aesKey(secret: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'gatehouse', 'ca-sync issuing keys v1', 32))
}

/** Whether sealing these key files needs the secret (a PKCS#11 reference does not). */
export function needsSecret(keyFiles: readonly string[]): boolean {
  return keyFiles.some((k) => !isKeyReference(k))
}

/** The material of a rotation, keys sealed; GH_CA_SYNC_SECRET_MISSING when a key file holds a key and there is no secret. */
export function sealCaMaterial(issuing: CaIssuerFiles, previous: CaIssuerFiles[], secret: Uint8Array | undefined, random: Random): string {
  const seal = (f: CaIssuerFiles): StoredIssuer => {
    if (isKeyReference(f.keyFile)) return { serial: f.serial, cert: f.cert, key: { reference: f.keyFile } }
    if (!secret) throw new CaSyncSecretMissing('ca rotate on a shared registry (PostgreSQL)', 'nothing was changed')
    const iv = Buffer.from(random.bytes(12))
    const cipher = createCipheriv('aes-256-gcm', aesKey(secret), iv)
    cipher.setAAD(Buffer.from(f.serial))
    const data = Buffer.concat([cipher.update(f.keyFile, 'utf8'), cipher.final()])
    const sealed = { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') }
    return { serial: f.serial, cert: f.cert, key: { sealed } }
  }
  const material: CaMaterial = { v: 1, issuing: seal(issuing), previous: previous.map(seal) }
  return JSON.stringify(material)
}

/** The stored material, shape checked (keys still sealed); GH_CA_SYNC_REFUSED when the row is not one. */
export function parseCaMaterial(raw: string): CaMaterial {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    throw new CaSyncRefused('the row is not JSON')
  }
  const m = value as Partial<CaMaterial>
  if (m?.v !== 1 || !isIssuer(m.issuing) || !Array.isArray(m.previous) || !m.previous.every(isIssuer))
    throw new CaSyncRefused('the row is not CA material of version 1')
  return m as CaMaterial
}

function isIssuer(v: unknown): v is StoredIssuer {
  const i = v as StoredIssuer | undefined
  const key = i?.key as Record<string, unknown> | undefined
  const sealed = key?.sealed as Record<string, unknown> | undefined
  return (
    typeof i?.serial === 'string' &&
    /^[0-9a-f]+$/.test(i.serial) &&
    typeof i.cert === 'string' &&
    (typeof key?.reference === 'string' || ['iv', 'tag', 'data'].every((f) => typeof sealed?.[f] === 'string'))
  )
}

/** A stored issuer's key file as it goes into ca/, opened with the secret when sealed. */
export function openKeyFile(issuer: StoredIssuer, secret: Uint8Array | undefined): string {
  if ('reference' in issuer.key) return issuer.key.reference
  const then = 'this node keeps serving with the CA it has, and installs the new one once restarted with the secret'
  if (!secret) throw new CaSyncSecretMissing(`installing the issuing CA ${issuer.serial} from the shared registry`, then)
  const { iv, tag, data } = issuer.key.sealed
  try {
    const decipher = createDecipheriv('aes-256-gcm', aesKey(secret), Buffer.from(iv, 'base64'))
    decipher.setAAD(Buffer.from(issuer.serial))
    decipher.setAuthTag(Buffer.from(tag, 'base64'))
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8')
  } catch (err) {
    throw new CaSyncSecretWrong(issuer.serial, then, { cause: err })
  }
}
