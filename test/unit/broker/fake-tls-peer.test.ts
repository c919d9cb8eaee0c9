import { tlsPeerContract, type TlsPeer } from '../../contract/tls-peer.contract.ts'
import { asTlsPeer, duplexPair, fakePeerCertificate, SERVER_AUTH_OID } from '../../helpers/mqtt-packet-stream.ts'

// The in-memory peer the broker unit tests connect with looks as a real TLS peer does (integration/broker/tls-peer.test.ts).
tlsPeerContract('asTlsPeer with fakePeerCertificate', async (deviceId, usage) => {
  const issued = {
    serial: Buffer.from(deviceId).toString('hex'),
    notBefore: new Date('2025-12-01T00:00:00Z'),
    notAfter: new Date('2026-12-01T00:00:00Z'),
  }
  const cert = fakePeerCertificate({ cn: deviceId, ...issued, ...(usage === 'server-only' ? { extKeyUsage: [SERVER_AUTH_OID] } : {}) })
  const [conn] = duplexPair()
  return { peer: asTlsPeer(conn, cert) as unknown as TlsPeer, issued }
})
