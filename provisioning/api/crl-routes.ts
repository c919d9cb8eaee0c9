import type { FastifyInstance } from 'fastify'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import { CrlNotFound } from '../errors.ts'

export interface CrlRoutesOptions {
  authority: Pick<DeviceAuthority, 'crlByKeyId'>
  clock: { now(): Date }
}

/**
 * GET /crl/<issuer key id>.crl: each issuing CA's CRL (the current one and those a rotation kept), in
 * DER, without an API key, as relying parties fetch the URL in a certificate's CRL Distribution Points
 * (RFC 5280 §4.2.1.13). It is served from the registry, where it is built once per revocation or per
 * half of its validity, never per request; shared caches may keep it until its nextUpdate.
 */
export async function crlRoutes(app: FastifyInstance, opts: CrlRoutesOptions): Promise<void> {
  app.get<{ Params: { file: string } }>(
    '/crl/:file',
    {
      config: { public: true },
      schema: {
        tags: ['crl'],
        summary: "An issuing CA's CRL, DER (application/pkix-crl), cacheable until its nextUpdate (no API key)",
        security: [],
        params: { type: 'object', properties: { file: { type: 'string', maxLength: 140 } }, required: ['file'] },
        response: {
          200: { description: 'the CRL, DER', content: { 'application/pkix-crl': { schema: { type: 'string', format: 'binary' } } } },
        },
      },
    },
    async (request, reply) => {
      const keyId = request.params.file.endsWith('.crl') ? request.params.file.slice(0, -4) : ''
      const crl = await opts.authority.crlByKeyId(keyId)
      if (crl === undefined) throw new CrlNotFound(request.params.file.slice(0, 140))
      const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - opts.clock.now().getTime()) / 1000))
      return reply
        .header('content-type', 'application/pkix-crl')
        .header('cache-control', `public, max-age=${maxAge}`)
        .header('expires', crl.nextUpdate.toUTCString())
        .header('last-modified', crl.thisUpdate.toUTCString())
        .header('etag', `"${crl.crlNumber}"`)
        .send(Buffer.from(crl.der))
    },
  )
}
