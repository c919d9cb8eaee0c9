import { describe, expect, it } from 'vitest'
import { identityFromPeerCertificate, type PeerCertificateLike } from '../../certs/peer-identity.ts'
import { CLIENT_AUTH_OID, SERVER_AUTH_OID } from '../helpers/mqtt-packet-stream.ts'

/** What the authenticate hook reads from a connection (a TLSSocket in production). */
export interface TlsPeer {
  authorized: boolean
  remoteAddress?: string | undefined
  getPeerCertificate(): PeerCertificateLike & { ext_key_usage?: string[] }
}

/** A connection from a device presenting a certificate with CN `deviceId` and the usage named. */
export type MakePeer = (
  deviceId: string,
  usage: 'client' | 'server-only',
) => Promise<{ peer: TlsPeer; issued: { serial: string; notBefore: Date; notAfter: Date } }>

/**
 * What the broker may rely on from the peer of a connection, whoever makes it: a real TLS handshake on
 * loopback (integration/) and asTlsPeer + fakePeerCertificate (test/helpers/mqtt-packet-stream.ts, unit/).
 */
export function tlsPeerContract(name: string, make: MakePeer): void {
  const seconds = (d: Date) => Math.floor(d.getTime() / 1000) * 1000 // Node prints validity to the second

  describe(`${name} (TLS peer contract)`, () => {
    it('is authorized, from an address, and names the device, serial and validity it was issued', async () => {
      const { peer, issued } = await make('pump-7', 'client')
      expect(peer.authorized).toBe(true)
      expect(peer.remoteAddress).toMatch(/^[0-9a-f.:]+$/)
      const identity = identityFromPeerCertificate(peer.getPeerCertificate())
      expect(identity).toEqual({
        commonName: 'pump-7',
        deviceId: 'pump-7',
        serial: issued.serial,
        fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
        notBefore: new Date(seconds(issued.notBefore)),
        notAfter: new Date(seconds(issued.notAfter)),
      })
    })

    it('prints its fields as Node does: uppercase hex serial, colon-separated fingerprint, GMT dates', async () => {
      const pc = (await make('pump-7', 'client')).peer.getPeerCertificate()
      expect(pc.serialNumber).toMatch(/^[0-9A-F]+$/)
      expect(pc.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
      for (const date of [pc.valid_from, pc.valid_to]) expect(date).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT$/)
    })

    it('reports the extended key usage: clientAuth for a device certificate, serverAuth only for a server one', async () => {
      const client = (await make('pump-7', 'client')).peer.getPeerCertificate()
      expect(client.ext_key_usage).toContain(CLIENT_AUTH_OID)
      expect(client.ext_key_usage).not.toContain(SERVER_AUTH_OID)
      expect((await make('pump-8', 'server-only')).peer.getPeerCertificate().ext_key_usage).toEqual([SERVER_AUTH_OID])
    })
  })
}
