import { execFile } from 'node:child_process'
import { X509Certificate as NodeX509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  certificateToPem,
  chainPem,
  createCrl,
  crlToPem,
  cryptoRandom,
  exportPrivateKeyPkcs8,
  generateKeyObjects,
  generateKeyPair,
  identityFromCertificate,
  identityFromPeerCertificate,
  issueDeviceCertificateDer,
  issueServerCertificate,
  parseCsr,
  pkcs8ToPem,
  privateKeyFromPem,
  privateKeyToPem,
  systemClock,
  toPkcs12,
  type CertificateAuthority,
  type KeyAlgorithm,
} from '../../../certs/index.ts'
import { issueDeviceCertificate } from '../../../certs/device-certificate.ts'
import { makeTempPemDir, makeTestCa, type TempPemDir } from '../../helpers/test-ca.ts'

// Real files in a temp dir and the real openssl CLI. Real time too: openssl checks validity against now.
const run = promisify(execFile)
const deps = { clock: systemClock, random: cryptoRandom }
const openssl = async (...args: string[]) => run('openssl', args, { encoding: 'utf8' })

let tmp: TempPemDir
beforeAll(() => {
  tmp = makeTempPemDir()
})
afterAll(() => tmp.cleanup())

const caFor = (keyAlgorithm: KeyAlgorithm) => makeTestCa({ keyAlgorithm, clock: systemClock, cache: true })

/** Writes root.pem, issuing.pem and ca.pem (issuing + root) for a CA; returns their paths. */
function writeCa(ca: CertificateAuthority, prefix: string) {
  return {
    root: tmp.write(`${prefix}-root.pem`, certificateToPem(ca.root.certificate)),
    issuing: tmp.write(`${prefix}-issuing.pem`, certificateToPem(ca.issuing.certificate)),
    chain: tmp.write(`${prefix}-ca.pem`, chainPem(ca)),
  }
}

async function issueDevice(ca: CertificateAuthority, alg: KeyAlgorithm, deviceId = 'dev-1') {
  const keys = await generateKeyPair(alg)
  const cert = await issueDeviceCertificate(ca.issuing, { deviceId, publicKey: keys.publicKey }, deps)
  return { keys, cert }
}

describe('certificates, as openssl sees them', () => {
  it.each([
    ['p256', 'ASN1 OID: prime256v1'],
    ['p384', 'ASN1 OID: secp384r1'],
    ['rsa2048', 'Public-Key: (2048 bit)'],
  ] as const)('verifies %s device and server certificates through the chain', async (alg, keyText) => {
    const ca = await caFor(alg)
    const files = writeCa(ca, alg)
    const device = await issueDevice(ca, alg)
    const devicePem = tmp.write(`${alg}-device.pem`, certificateToPem(device.cert))
    const serverKeys = await generateKeyPair(alg)
    const server = await issueServerCertificate(ca.issuing, { publicKey: serverKeys.publicKey, hostnames: ['mqtt.example.com'] }, deps)
    const serverPem = tmp.write(`${alg}-server.pem`, certificateToPem(server))

    const split = await openssl('verify', '-x509_strict', '-CAfile', files.root, '-untrusted', files.issuing, devicePem, serverPem)
    expect(split.stdout).toContain(`${devicePem}: OK`)
    expect(split.stdout).toContain(`${serverPem}: OK`)
    const bundled = await openssl('verify', '-CAfile', files.chain, devicePem)
    expect(bundled.stdout).toContain(`${devicePem}: OK`)
    await openssl('verify', '-purpose', 'sslclient', '-CAfile', files.chain, devicePem)
    await openssl('verify', '-purpose', 'sslserver', '-CAfile', files.chain, serverPem)
    await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', files.chain, devicePem)).rejects.toThrow()

    const text = (await openssl('x509', '-in', devicePem, '-noout', '-text')).stdout
    expect(text).toMatch(/Subject: CN ?= ?dev-1/)
    expect(text).toContain('URI:urn:gatehouse:device:dev-1')
    expect(text).toContain('TLS Web Client Authentication')
    expect(text).not.toContain('TLS Web Server Authentication')
    expect(text).toContain('CA:FALSE')
    expect(text).toContain(keyText)
    const serverText = (await openssl('x509', '-in', serverPem, '-noout', '-text')).stdout
    expect(serverText).toContain('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:mqtt.example.com')
    expect(serverText).toContain('TLS Web Server Authentication')
  })
})

describe('device certificates as batch provisioning makes them (KeyObject keys, DER fast path)', () => {
  it.each([
    ['p256', 'p256', 'ecdsa-with-SHA256'],
    ['p256', 'p384', 'ecdsa-with-SHA256'],
    ['p384', 'p256', 'ecdsa-with-SHA384'],
    ['rsa2048', 'p256', 'sha256WithRSAEncryption'],
    ['p256', 'rsa2048', 'ecdsa-with-SHA256'],
  ] as const)('%s issuer, %s device key: openssl verifies it strictly and the key PEM matches it', async (caAlg, deviceAlg, sigAlg) => {
    const ca = await caFor(caAlg)
    const files = writeCa(ca, `fast-${caAlg}`)
    const keys = await generateKeyObjects(deviceAlg)
    const issued = await issueDeviceCertificateDer(ca.issuing, { deviceId: 'dev_fast-1', publicKey: keys.publicKey }, deps)
    const certPem = tmp.write(`fast-${caAlg}-${deviceAlg}.pem`, issued.pem)
    const keyPem = tmp.write(`fast-${caAlg}-${deviceAlg}-key.pem`, pkcs8ToPem(await exportPrivateKeyPkcs8(keys.privateKey)))

    const strict = await openssl('verify', '-x509_strict', '-CAfile', files.root, '-untrusted', files.issuing, certPem)
    expect(strict.stdout).toContain(`${certPem}: OK`)
    await openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', files.chain, certPem)
    // signed by node:crypto's sign() with the CA's KeyObject (issue 14): Node's own X.509 code agrees
    const nodeCert = new NodeX509Certificate(issued.der)
    const nodeIssuer = new NodeX509Certificate(new Uint8Array(ca.issuing.certificate.rawData))
    expect(nodeCert.checkIssued(nodeIssuer)).toBe(true)
    expect(nodeCert.verify(nodeIssuer.publicKey)).toBe(true)
    expect(nodeCert.verify(new NodeX509Certificate(new Uint8Array(ca.root.certificate.rawData)).publicKey)).toBe(false)
    await expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', files.chain, certPem)).rejects.toThrow()

    const text = (await openssl('x509', '-in', certPem, '-noout', '-text')).stdout
    expect(text).toMatch(/Subject: CN ?= ?dev_fast-1/)
    expect(text).toContain('URI:urn:gatehouse:device:dev_fast-1')
    expect(text).toContain(`Signature Algorithm: ${sigAlg}`)
    expect(text).toContain('TLS Web Client Authentication')
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/)
    expect(text).toMatch(
      deviceAlg === 'rsa2048' ? /Key Usage: critical\s+Digital Signature, Key Encipherment/ : /Key Usage: critical\s+Digital Signature\n/,
    )
    expect(text).toContain('X509v3 Subject Key Identifier')
    expect(text).toContain('X509v3 Authority Key Identifier')
    expect(text).toContain(`Serial Number:`)

    const fromCert = (await openssl('x509', '-in', certPem, '-noout', '-pubkey')).stdout
    const fromKey = (await openssl('pkey', '-in', keyPem, '-pubout')).stdout
    expect(fromKey).toBe(fromCert)
    const fingerprint = (await openssl('x509', '-in', certPem, '-noout', '-fingerprint', '-sha256')).stdout
    expect(fingerprint.split('=')[1]?.trim().replace(/:/g, '').toLowerCase()).toBe(issued.fingerprint)
    const serial = (await openssl('x509', '-in', certPem, '-noout', '-serial')).stdout
    expect(serial.split('=')[1]?.trim().toLowerCase().replace(/^0+/, '')).toBe(issued.serial)
  })
})

describe('CSRs made by openssl req', () => {
  it('accepts a P-256 CSR (PEM and DER) and issues a certificate openssl verifies', async () => {
    const ca = await caFor('p256')
    const files = writeCa(ca, 'csr')
    const csrPem = join(tmp.dir, 'p256.csr')
    await openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(tmp.dir, 'p256-key.pem'),
      '-subj',
      '/CN=dev-1',
      '-out',
      csrPem,
    )
    const parsed = await parseCsr(readFileSync(csrPem, 'utf8'), { expectedDeviceId: 'dev-1' })
    expect(parsed).toMatchObject({ commonName: 'dev-1', keyAlgorithm: 'p256' })
    const csrDer = join(tmp.dir, 'p256.csr.der')
    await openssl('req', '-in', csrPem, '-outform', 'DER', '-out', csrDer)
    expect((await parseCsr(new Uint8Array(readFileSync(csrDer)), {})).der).toEqual(parsed.der)

    const cert = await issueDeviceCertificate(ca.issuing, { deviceId: parsed.commonName, publicKey: parsed.publicKey }, deps)
    const certPem = tmp.write('from-csr.pem', certificateToPem(cert))
    expect((await openssl('verify', '-CAfile', files.chain, certPem)).stdout).toContain('OK')
    // the certificate carries the key of the CSR
    const fromCert = (await openssl('x509', '-in', certPem, '-noout', '-pubkey')).stdout
    const fromCsr = (await openssl('req', '-in', csrPem, '-noout', '-pubkey')).stdout
    expect(fromCert).toBe(fromCsr)
  })

  it('refuses an RSA-1024 CSR (GH_CSR_WEAK_KEY)', async () => {
    const csrPem = join(tmp.dir, 'rsa1024.csr')
    await openssl(
      'req',
      '-new',
      '-newkey',
      'rsa:1024',
      '-nodes',
      '-keyout',
      join(tmp.dir, 'rsa1024-key.pem'),
      '-subj',
      '/CN=dev-1',
      '-out',
      csrPem,
    )
    await expect(parseCsr(readFileSync(csrPem, 'utf8'), {})).rejects.toMatchObject({ code: 'GH_CSR_WEAK_KEY' })
  })
})

describe('CRLs, as openssl sees them', () => {
  it('lists a revoked serial with its reason, verifies, and makes openssl refuse the certificate', async () => {
    const ca = await caFor('p256')
    const files = writeCa(ca, 'crl')
    const device = await issueDevice(ca, 'p256')
    const devicePem = tmp.write('crl-device.pem', certificateToPem(device.cert))
    const now = systemClock.now()
    const crl = await createCrl(
      ca.issuing,
      {
        entries: [
          { serial: device.cert.serialNumber, revokedAt: now, reason: 'keyCompromise' },
          // a serial with its top bit set (DER needs a 00 byte to keep it positive), and one whose first digit is 0
          { serial: '8011223344556677889900aabbccddee', revokedAt: now, reason: 'superseded' },
          { serial: 'a11223344556677889900aabbccddee', revokedAt: now, reason: 'superseded' },
        ],
        crlNumber: 42,
      },
      deps,
    )
    const crlPem = tmp.write('crl.pem', crlToPem(crl))

    const text = (await openssl('crl', '-in', crlPem, '-noout', '-text')).stdout
    expect(text).toContain(`Serial Number: ${device.cert.serialNumber.toUpperCase()}`)
    expect(text).toContain('Serial Number: 8011223344556677889900AABBCCDDEE')
    expect(text).toContain('Serial Number: 0A11223344556677889900AABBCCDDEE')
    expect(text).toContain('Key Compromise')
    expect(text).toMatch(/X509v3 CRL Number: \n\s+42/)
    expect(text).toContain('X509v3 Authority Key Identifier')
    const verified = await openssl('crl', '-in', crlPem, '-noout', '-verify', '-CAfile', files.chain)
    expect(`${verified.stdout}${verified.stderr}`).toContain('verify OK')

    const refused = await openssl('verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', files.chain, devicePem).then(
      () => null,
      (err: { stdout: string; stderr: string }) => `${err.stdout}${err.stderr}`,
    )
    expect(refused).toContain('certificate revoked')
  })
})

describe('PKCS#12 bundles, as openssl sees them', () => {
  it.each(['p256', 'rsa2048'] as const)('opens a %s .p12 with the password and gives back key and certificate', async (alg) => {
    const ca = await caFor('p256')
    const device = await issueDevice(ca, alg)
    const pkcs8 = await exportPrivateKeyPkcs8(device.keys.privateKey)
    const p12 = tmp.write(
      `${alg}.p12`,
      toPkcs12({
        privateKeyPkcs8: pkcs8,
        certificate: device.cert,
        chain: [ca.issuing.certificate, ca.root.certificate],
        password: 'p12-pass',
        friendlyName: 'dev-1',
      }),
    )
    const { stdout } = await openssl('pkcs12', '-in', p12, '-passin', 'pass:p12-pass', '-nodes')
    expect(stdout).toContain('friendlyName: dev-1')
    expect(stdout.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(3)
    expect(stdout).toContain(certificateToPem(device.cert).trim())
    const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(stdout)?.[0]
    expect(keyPem).toBeDefined()
    expect(await exportPrivateKeyPkcs8(await privateKeyFromPem(keyPem!))).toEqual(pkcs8)

    await expect(openssl('pkcs12', '-in', p12, '-passin', 'pass:wrong', '-nodes')).rejects.toMatchObject({
      stderr: expect.stringMatching(/mac verify (error|failure)/i),
    })
  })
})

describe('mutual TLS with issued certificates', () => {
  async function handshake(ca: CertificateAuthority, clientCa: CertificateAuthority) {
    const serverKeys = await generateKeyPair()
    const serverCert = await issueServerCertificate(ca.issuing, { publicKey: serverKeys.publicKey }, deps)
    const device = await issueDevice(clientCa, 'p256', 'dev-tls')
    const server = createServer({
      key: await privateKeyToPem(serverKeys.privateKey),
      cert: certificateToPem(serverCert) + certificateToPem(ca.issuing.certificate),
      ca: chainPem(ca),
      requestCert: true,
      rejectUnauthorized: false, // report, rather than drop, so the test can see why
    })
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const serverSide = new Promise<TLSSocket>((resolve) => server.on('secureConnection', resolve))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const client = connect({
      host: '127.0.0.1',
      port,
      key: await privateKeyToPem(device.keys.privateKey),
      cert: certificateToPem(device.cert) + certificateToPem(clientCa.issuing.certificate),
      ca: chainPem(ca),
    })
    onTestFinished(() => {
      client.destroy()
    })
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', resolve)
      client.once('error', reject)
    })
    const socket = await serverSide
    return { client, socket, device }
  }

  it('connects a device to the server on 127.0.0.1, both sides authorized', async () => {
    const ca = await caFor('p256')
    const { client, socket, device } = await handshake(ca, ca)
    expect(client.authorized).toBe(true)
    expect(socket.authorized).toBe(true)
    const identity = identityFromPeerCertificate(socket.getPeerCertificate())
    expect(identity).toEqual(await identityFromCertificate(device.cert))
    expect(identity.deviceId).toBe('dev-tls')
  })

  it('does not authorize a device certificate from another CA', async () => {
    const ca = await caFor('p256')
    const other = await makeTestCa({ clock: systemClock, name: 'Other' })
    const { socket } = await handshake(ca, other)
    expect(socket.authorized).toBe(false)
    expect(String(socket.authorizationError)).toMatch(/UNABLE_TO_GET_ISSUER_CERT|unable to get/i)
  })
})
