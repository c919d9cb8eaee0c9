import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { beforeAll, onTestFinished } from 'vitest'
import { identityFromCertificate, parseCertificatePem } from '../../../certs/index.ts'
import { tlsPeerContract } from '../../contract/tls-peer.contract.ts'
import { makeBrokerPki, type BrokerPki } from '../../helpers/broker-pki.ts'

let pki: BrokerPki
beforeAll(async () => {
  pki = await makeBrokerPki()
})

// A real TLS handshake on 127.0.0.1 with a certificate from the test CA: the server side's socket.
tlsPeerContract('a TLS socket on loopback', async (deviceId, usage) => {
  const creds = usage === 'client' ? await pki.device(deviceId) : await pki.serverOnly(deviceId)
  const server = createServer({ ...pki.serverTls, requestCert: true, rejectUnauthorized: false })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>
  const client = connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    cert: creds.cert,
    key: creds.key,
    ca: creds.ca,
    servername: 'localhost',
    rejectUnauthorized: false,
  })
  client.on('error', () => {})
  const [socket] = await accepted
  onTestFinished(async () => {
    client.destroy()
    socket.destroy()
    await new Promise((r) => server.close(r))
  })
  const identity = await identityFromCertificate(parseCertificatePem(creds.cert))
  return { peer: socket, issued: { serial: identity.serial, notBefore: identity.notBefore, notAfter: identity.notAfter } }
})
