import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Clock, Timers } from '../certs/index.ts'

/**
 * The one outbound HTTP POST of the data plane (telemetry routes, the AI bridge's OpenAI-compatible and
 * webhook providers; docs/architecture.md, "Outbound HTTP"). One timer covers connect, headers and the
 * whole body; the caller's signal aborts it (a route deleted, the broker closing); the answer's body is
 * read up to a bound; Retry-After is parsed (seconds or an HTTP date). Redirects are never followed.
 * It speaks node:http/node:https through its caller's keep-alive agents: undici's WHATWG `fetch` cost
 * about 2 ms of CPU per POST (bench/README.md, "Routes and app subscriptions").
 */
export interface HttpPostDeps {
  agents: HttpAgents
  timers: Timers
  clock: Clock
}

/**
 * One keep-alive agent per scheme, owned by a caller (the telemetry routes, the AI bridge) and destroyed
 * when it stops: at most `maxSocketsPerOrigin` connections to one origin (more requests wait for one,
 * inside their timer) and at most that many idle ones kept.
 */
export interface HttpAgents {
  http: HttpAgent
  https: HttpsAgent
  destroy(): void
}

export function createHttpAgents(maxSocketsPerOrigin: number): HttpAgents {
  const options = { keepAlive: true, maxSockets: maxSocketsPerOrigin, maxFreeSockets: maxSocketsPerOrigin }
  const http = new HttpAgent(options)
  const https = new HttpsAgent(options)
  return {
    http,
    https,
    destroy() {
      http.destroy()
      https.destroy()
    },
  }
}

export interface HttpPostRequest {
  url: string | URL
  body: string
  headers: Record<string, string>
  timeoutMs: number
  /** the most of a 2xx answer's body read */
  maxResponseBytes: number
  /** over maxResponseBytes: 'fail' throws HttpPostFailed('too-large'), 'truncate' keeps the first bytes */
  oversize: 'fail' | 'truncate'
  /** 'error': a redirect is a network error; 'manual': it is answered as its 3xx status */
  redirect: 'error' | 'manual'
  signal?: AbortSignal
}

/** An answer. The body is read only for a 2xx (other statuses are cancelled unread). */
export interface HttpPostAnswer {
  status: number
  ok: boolean
  body: string
  /** from Retry-After, in ms from now (at most RETRY_AFTER_CAP_MS); absent when missing or unusable */
  retryAfterMs?: number
}

export type HttpPostFailure = 'timeout' | 'network' | 'too-large'

/** No answer: a timeout, a network error (reset, refused, DNS), or a body over the bound. */
export class HttpPostFailed extends Error {
  override name = 'HttpPostFailed'
  constructor(
    message: string,
    readonly reason: HttpPostFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** A Retry-After larger than a day is read as a day (a timer of more than 2^31 ms would fire at once). */
export const RETRY_AFTER_CAP_MS = 86_400_000

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as ms from now, capped; undefined when unusable. */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Math.min(RETRY_AFTER_CAP_MS, Number(v) * 1000)
  if (!/[A-Za-z]/.test(v)) return undefined
  const at = Date.parse(v)
  if (Number.isNaN(at)) return undefined
  return Math.min(RETRY_AFTER_CAP_MS, Math.max(0, at - now.getTime()))
}

export async function httpPost(request: HttpPostRequest, deps: HttpPostDeps): Promise<HttpPostAnswer> {
  const { signal } = request
  if (signal?.aborted) throw signal.reason
  const url = typeof request.url === 'string' ? new URL(request.url) : request.url
  const tls = url.protocol === 'https:'
  if (!tls && url.protocol !== 'http:') throw new HttpPostFailed(`network error (${url.protocol} is not http: or https:)`, 'network')
  const body = Buffer.from(request.body, 'utf8')
  return new Promise<HttpPostAnswer>((resolve, reject) => {
    let settled = false
    const finish = (err: unknown, answer?: HttpPostAnswer) => {
      if (settled) return
      settled = true
      deps.timers.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve(answer as HttpPostAnswer)
      else {
        req.destroy()
        reject(err)
      }
    }
    const timer = deps.timers.setTimeout(
      () => finish(new HttpPostFailed(`no answer within ${request.timeoutMs} ms`, 'timeout')),
      request.timeoutMs,
    )
    const onAbort = () => finish(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    const req = (tls ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      agent: tls ? deps.agents.https : deps.agents.http,
      headers: { 'content-type': 'application/json', ...request.headers, 'content-length': String(body.byteLength) },
    })
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new HttpPostFailed(`network error${err.code ? ` (${err.code})` : ''}`, 'network', { cause: err })),
    )
    req.on('response', (res) => {
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400 && request.redirect === 'error') {
        res.destroy()
        finish(new HttpPostFailed(`network error (a redirect to ${res.headers.location ?? 'nowhere'} is not followed)`, 'network'))
        return
      }
      const retryAfter = res.headers['retry-after']
      const retryAfterMs = parseRetryAfter(retryAfter === undefined ? null : retryAfter, deps.clock.now())
      const ok = status >= 200 && status < 300
      const answer = { status, ok, ...(retryAfterMs !== undefined && { retryAfterMs }) }
      if (!ok) {
        // cancelled unread: the connection is closed rather than drained of a body of any size
        res.destroy()
        finish(undefined, { ...answer, body: '' })
        return
      }
      readBounded(res, request.maxResponseBytes, request.oversize, (err, text) =>
        err === undefined ? finish(undefined, { ...answer, body: text }) : finish(err),
      )
    })
    req.end(body)
  })
}

/** At most max bytes of the body; past it, the rest is dropped unread with its connection (and 'fail' fails). */
function readBounded(res: IncomingMessage, max: number, oversize: 'fail' | 'truncate', done: (err: unknown, text: string) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  const onData = (chunk: Buffer) => {
    if (size + chunk.byteLength > max) {
      res.off('data', onData)
      res.destroy()
      if (oversize === 'fail') return done(new HttpPostFailed(`response larger than ${max} bytes`, 'too-large'), '')
      chunks.push(chunk.subarray(0, max - size))
      return done(undefined, Buffer.concat(chunks).toString('utf8'))
    }
    chunks.push(chunk)
    size += chunk.byteLength
  }
  res.on('data', onData)
  res.on('end', () => done(undefined, Buffer.concat(chunks).toString('utf8')))
  res.on('close', () => {
    if (!res.complete) done(new HttpPostFailed('network error (the connection closed inside the body)', 'network'), '')
  })
  res.on('error', (err: NodeJS.ErrnoException) =>
    done(new HttpPostFailed(`network error${err.code ? ` (${err.code})` : ''}`, 'network', { cause: err }), ''),
  )
}
