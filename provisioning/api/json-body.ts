import type { FastifyInstance } from 'fastify'
import { unsafeInteger } from '../../certs/index.ts'
import { JsonIntegerUnsafe } from '../errors.ts'

/**
 * The API's one JSON body parser (application/json, and merge-patch+json on the PATCH routes): fastify's own,
 * which refuses __proto__ and constructor keys, plus a refusal of integers JSON.parse would round
 * (GH_JSON_INTEGER_UNSAFE names the field), so nothing stored differs from what the client sent.
 */
export function addJsonBodyParser(app: FastifyInstance, contentType: string): void {
  const parse = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser(contentType, { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    void parse(request, text, (err, value) => {
      if (err) return done(err, undefined)
      const unsafe = unsafeInteger(text)
      if (unsafe) return done(new JsonIntegerUnsafe(unsafe.literal, `body.${unsafe.path}`, String(unsafe.parsed)), undefined)
      done(null, value)
    })
  })
}
