import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { x509 } from '../../../certs/x509.ts'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { dataDirLayout } from '../../../provisioning/index.ts'
import { openssl } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

const log = pino({ level: 'silent' })
const BASE = 'http://crl.example.test/pki'

/** The URL in a certificate's CRL Distribution Points extension, or undefined. */
function distributionPoint(pem: string): string | undefined {
  const ext = new x509.X509Certificate(pem).getExtension(x509.CRLDistributionPointsExtension)
  return ext?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier
}

describe('GET /crl/<issuer key id>.crl', () => {
  it('serves the issuer CRL named in every certificate, without a key, which openssl uses to refuse a revoked device and pass a good one', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, crlBaseUrl: BASE }, {}), { log })
    onTestFinished(() => gatehouse.close())
    const { authority, claims } = gatehouse.control
    const good = await authority.createDevice({ id: 'good-1' }, 'operator:test')
    const bad = await authority.createDevice({ id: 'bad-1' }, 'operator:test')
    const renewed = await authority.renewDevice('good-1', {}, 'operator:test')
    const claim = await claims.create({ group: 'pumps' }, 'operator:test')

    const url = distributionPoint(good.certificatePem)
    expect(url).toMatch(new RegExp(`^${BASE}/crl/[0-9a-f]{40}\\.crl$`))
    for (const pem of [bad.certificatePem, renewed.certificatePem, claim.certificatePem]) expect(distributionPoint(pem)).toBe(url)

    await authority.revokeDevice('bad-1', 'keyCompromise', 'operator:test')
    await claims.revoke(claim.claim.id, 'operator:test') // no CRL reissue of its own: the change feed's claim.revoked does it
    const path = url!.slice(BASE.length)
    const fetchCrl = () => fetch(`${gatehouse.http.url}${path}`)
    const res = await waitFor(
      async () => {
        const r = await fetchCrl()
        const crl = new x509.X509Crl(await r.arrayBuffer())
        return crl.findRevoked(claim.claim.serial) ? { r, crl } : undefined
      },
      5000,
      "the revoked claim's certificate on the served CRL",
    )
    expect(res.r.status).toBe(200)
    expect(res.r.headers.get('content-type')).toBe('application/pkix-crl')
    const nextUpdate = res.crl.nextUpdate!
    expect(res.r.headers.get('expires')).toBe(nextUpdate.toUTCString())
    const maxAge = Number(/^public, max-age=(\d+)$/.exec(res.r.headers.get('cache-control') ?? '')?.[1])
    expect(Math.abs(maxAge - (nextUpdate.getTime() - Date.now()) / 1000)).toBeLessThan(60)
    expect(res.crl.findRevoked(bad.serial)?.reason).toBe(x509.X509CrlReason.keyCompromise)
    expect(res.crl.findRevoked(good.serial)).toBeNull()

    // built once per change: fetching again serves the same CRL (same number), not a new one per request
    const etag = res.r.headers.get('etag')
    for (let i = 0; i < 5; i++) expect((await fetchCrl()).headers.get('etag')).toBe(etag)

    const crlPem = join(dir, 'crl.pem')
    const der = join(dir, 'crl.der')
    writeFileSync(der, Buffer.from(res.crl.rawData))
    expect((await openssl(['crl', '-inform', 'DER', '-in', der, '-out', crlPem])).code).toBe(0)
    const chain = dataDirLayout(dataDir).chain
    const verify = async (certPem: string, name: string) => {
      const file = join(dir, `${name}.pem`)
      writeFileSync(file, certPem)
      return openssl(['verify', '-crl_check', '-CAfile', chain, '-CRLfile', crlPem, file])
    }
    const ok = await verify(good.certificatePem, 'good')
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(': OK')
    const refused = await verify(bad.certificatePem, 'bad')
    expect(refused.code).not.toBe(0)
    expect(refused.stdout + refused.stderr).toContain('certificate revoked')
  })

  it('answers 404 problem+json for an unknown key id or a name that is not <key id>.crl, and certificates carry no CRL URL without crlBaseUrl', async () => {
    const gatehouse = await startGatehouse(loadConfig({ dataDir: join(tempDir(), 'data'), mqttPort: 0, httpPort: 0 }, {}), { log })
    onTestFinished(() => gatehouse.close())
    for (const name of [`${'ab'.repeat(20)}.crl`, 'x.crl', 'abcd', '..%2Fgatehouse.db']) {
      const res = await fetch(`${gatehouse.http.url}/crl/${name}`)
      expect(res.status, name).toBe(404)
      expect(res.headers.get('content-type')).toContain('application/problem+json')
      expect(await res.json()).toMatchObject({ code: 'GH_CRL_NOT_FOUND' })
    }
    const device = await gatehouse.control.authority.createDevice({ id: 'plain-1' }, 'operator:test')
    expect(distributionPoint(device.certificatePem)).toBeUndefined()
  })
})
