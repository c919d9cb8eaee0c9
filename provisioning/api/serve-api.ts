import { isIP } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { ApiInsecure } from '../errors.ts'

export interface ServeApiOptions {
  /** default 127.0.0.1 */
  host?: string
  /** 0 picks a free port (read it from the result) */
  port: number
  /** plain HTTP on a non-loopback address, e.g. behind a TLS-terminating proxy on a private network */
  allowInsecureHttp?: boolean
}

export interface ServedApi {
  url: string
  port: number
  close(): Promise<void>
}

/** 127.0.0.0/8, ::1 and localhost: the only addresses where plain HTTP is served without asking. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** Whether the instance was built with TLS (buildApi(deps, { https })). */
export const servesTls = (app: FastifyInstance): boolean => app.server instanceof TlsServer

/**
 * Listens with an API built by buildApi(). Plain HTTP is refused off loopback (GH_API_INSECURE): API keys
 * travel in a header, so anything that can read the traffic could use them. Build the API with the
 * Gatehouse-issued server certificate (`https`), bind loopback, or set allowInsecureHttp (warned).
 */
export async function serveApi(app: FastifyInstance, options: ServeApiOptions): Promise<ServedApi> {
  const host = options.host ?? '127.0.0.1'
  const tls = servesTls(app)
  if (!tls && !isLoopback(host)) {
    if (!options.allowInsecureHttp) throw new ApiInsecure(host)
    app.log.warn({ host, port: options.port }, 'HTTP API served without TLS on a non-loopback address: API keys cross the network in clear')
  }
  await app.listen({ host, port: options.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  const shown = host.includes(':') ? `[${host}]` : host
  return { url: `${tls ? 'https' : 'http'}://${shown}:${port}`, port, close: () => app.close() }
}
