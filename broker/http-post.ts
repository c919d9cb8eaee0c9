import type { Clock, Timers } from '../certs/index.ts'

/**
 * The one outbound HTTP POST of the data plane (telemetry routes, the AI bridge's OpenAI-compatible and
 * webhook providers; docs/architecture.md, "Outbound HTTP"). One timer covers connect, headers and the
 * whole body; the caller's signal aborts it (a route deleted, the broker closing); the answer's body is
 * read up to a bound; Retry-After is parsed (seconds or an HTTP date). Redirects are never followed.
 */
export interface HttpPostDeps {
  fetch: typeof globalThis.fetch
  timers: Timers
  clock: Clock
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
  const controller = new AbortController()
  let timedOut = false
  const timer = deps.timers.setTimeout(() => {
    timedOut = true
    controller.abort()
  }, request.timeoutMs)
  const onAbort = () => controller.abort(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  const failure = (err: unknown): unknown => {
    if (err instanceof HttpPostFailed) return err
    if (signal?.aborted) return signal.reason
    if (timedOut) return new HttpPostFailed(`no answer within ${request.timeoutMs} ms`, 'timeout', { cause: err })
    const code = (err as { cause?: { code?: string } })?.cause?.code
    return new HttpPostFailed(`network error${code ? ` (${code})` : ''}`, 'network', { cause: err })
  }
  try {
    const res = await deps.fetch(request.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...request.headers },
      body: request.body,
      signal: controller.signal,
      redirect: request.redirect,
    })
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), deps.clock.now())
    const answer = { status: res.status, ok: res.ok, ...(retryAfterMs !== undefined && { retryAfterMs }) }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      return { ...answer, body: '' }
    }
    return { ...answer, body: await readBounded(res, request.maxResponseBytes, request.oversize) }
  } catch (err) {
    throw failure(err)
  } finally {
    deps.timers.clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

/** At most max bytes of the body; past it, the rest is cancelled unread (and 'fail' throws). */
async function readBounded(res: Response, max: number, oversize: 'fail' | 'truncate'): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    if (size + value.byteLength > max) {
      await reader.cancel().catch(() => {})
      if (oversize === 'fail') throw new HttpPostFailed(`response larger than ${max} bytes`, 'too-large')
      chunks.push(value.subarray(0, max - size))
      break
    }
    chunks.push(value)
    size += value.byteLength
  }
  return Buffer.concat(chunks).toString('utf8')
}
