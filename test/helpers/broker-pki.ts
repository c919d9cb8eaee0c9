import {
  certificateToPem,
  chainPem,
  cryptoRandom,
  generateKeyPair,
  issueServerCertificate,
  normalizeSerial,
  privateKeyToPem,
  type CertificateAuthority,
  type Clock,
  type CryptoKey,
} from '../../certs/index.ts'
import { issueDeviceCertificate } from '../../certs/device-certificate.ts'
import { x509 } from '../../certs/x509.ts'
import type * as X509 from '@peculiar/x509'
import { fixedClock } from './clock.ts'
import { makeTestCa } from './test-ca.ts'

/** What a device holds: its certificate and key (PEM), the CA chain to trust, and its serial. */
export interface DeviceCredentials {
  deviceId: string
  cert: string
  key: string
  /** chain PEM of the CA to verify the broker with */
  ca: string
  /** normalized (lowercase hex, no leading zeros) */
  serial: string
}

/** What a device connects with, from what the authority issued it (createDevice, with the key it generated). */
export function credentialsOf(issued: {
  deviceId: string
  certificatePem: string
  chainPem: string
  serial: string
  privateKey?: { pem: string }
}): DeviceCredentials {
  if (!issued.privateKey) throw new Error(`no private key was issued with ${issued.deviceId}'s certificate`)
  return { deviceId: issued.deviceId, cert: issued.certificatePem, key: issued.privateKey.pem, ca: issued.chainPem, serial: issued.serial }
}

export interface BrokerPki {
  ca: CertificateAuthority
  /** chain PEM (issuing, root) */
  chain: string
  /** createBroker options.tls: server cert + issuing CA, key, and the chain devices are issued under */
  serverTls: { key: string; cert: string; ca: string }
  /** a device certificate from this CA; `clock` sets its issue time (for expired / not-yet-valid ones) */
  device(deviceId: string, opts?: { clock?: Clock; validDays?: number }): Promise<DeviceCredentials>
  /** a serverAuth-only certificate with CN = deviceId, from this CA (must not work as a client cert) */
  serverOnly(deviceId: string): Promise<DeviceCredentials>
  /**
   * a claim certificate (CN `claim:<claimId>`, clientAuth) from this CA; `deviceId` holds the CN, so
   * pass `{ clientId: 'claim:<nonce>' }` to mqttOptions / connectDevice
   */
  claim(claimId: string): Promise<DeviceCredentials>
}

const DAY = 86_400_000

/**
 * Real certificates for TLS tests, made with certs/. The CA's clock starts 30 days before the real
 * now, so that certificates issued "in the past" (already expired) are still inside the CA's validity.
 */
export async function makeBrokerPki(name = 'Broker Test'): Promise<BrokerPki> {
  const caClock = fixedClock(new Date(Date.now() - 30 * DAY))
  const ca = await makeTestCa({ clock: caClock, name })
  const chain = chainPem(ca)
  const now = (): Clock => fixedClock(new Date())
  const serverKeys = await generateKeyPair('p256')
  const serverCert = await issueServerCertificate(ca.issuing, { publicKey: serverKeys.publicKey }, { clock: now(), random: cryptoRandom })
  const credentials = async (deviceId: string, cert: X509.X509Certificate, privateKey: CryptoKey): Promise<DeviceCredentials> => ({
    deviceId,
    cert: certificateToPem(cert),
    key: await privateKeyToPem(privateKey),
    ca: chain,
    serial: normalizeSerial(cert.serialNumber),
  })
  return {
    ca,
    chain,
    serverTls: {
      key: await privateKeyToPem(serverKeys.privateKey),
      cert: certificateToPem(serverCert) + certificateToPem(ca.issuing.certificate),
      ca: chain,
    },
    async device(deviceId, opts = {}) {
      const keys = await generateKeyPair('p256')
      const cert = await issueDeviceCertificate(
        ca.issuing,
        { deviceId, publicKey: keys.publicKey, validDays: opts.validDays ?? 30 },
        { clock: opts.clock ?? now(), random: cryptoRandom },
      )
      return credentials(deviceId, cert, keys.privateKey)
    },
    async serverOnly(deviceId) {
      const keys = await generateKeyPair('p256')
      const cert = await issueServerCertificate(
        ca.issuing,
        { publicKey: keys.publicKey, commonName: deviceId },
        { clock: now(), random: cryptoRandom },
      )
      return credentials(deviceId, cert, keys.privateKey)
    },
    async claim(claimId) {
      const keys = await generateKeyPair('p256')
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(12)))
          .toString('hex')
          .replace(/^0/, '1'),
        subject: `CN=claim:${claimId}`,
        issuer: ca.issuing.certificate.subjectName,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 30 * DAY),
        publicKey: keys.publicKey,
        signingKey: ca.issuing.privateKey,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(ca.issuing.certificate),
        ],
      })
      return credentials(`claim:${claimId}`, cert, keys.privateKey)
    },
  }
}

/** A self-signed clientAuth certificate with CN = deviceId (no CA at all behind it). */
export async function selfSignedDevice(deviceId: string, trustChain: string): Promise<DeviceCredentials> {
  const keys = await generateKeyPair('p256')
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0123456789abcdef',
    name: [{ CN: [deviceId] }],
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  })
  return {
    deviceId,
    cert: certificateToPem(cert),
    key: await privateKeyToPem(keys.privateKey),
    ca: trustChain,
    serial: normalizeSerial(cert.serialNumber),
  }
}
