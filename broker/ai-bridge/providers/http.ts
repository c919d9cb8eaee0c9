import type { Clock, Timers } from '../../../certs/index.ts'
import { AiProviderFailed, AiProviderTimeout } from '../../errors.ts'
import type { FailureInfo } from './provider.ts'

export interface HttpDeps {
  fetch: typeof globalThis.fetch
  timers: Timers
  clock: Clock
}

export interface PostOptions {
  timeoutMs: number
  maxResponseBytes: number
  signal?: AbortSignal
}

/** A coded provider failure with what the retry loop needs; the message never holds a key. */
export function providerFailure(provider: string, reason: string, info: FailureInfo = {}, cause?: unknown): Error & FailureInfo {
  const err = new AiProviderFailed(provider, reason, cause === undefined ? undefined : { cause }) as Error & FailureInfo
  Object.assign(
    err,
    { retryable: info.retryable ?? false },
    info.status !== undefined && { status: info.status },
    info.retryAfterMs !== undefined && { retryAfterMs: info.retryAfterMs },
  )
  return err
}

/** Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as ms from now; undefined when unusable. */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const at = Date.parse(v)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now.getTime())
}

async function readBounded(res: Response, max: number, provider: string): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      throw providerFailure(provider, `response larger than ${max} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * POSTs a JSON body and returns the parsed JSON answer. 429 and 5xx are retryable (with Retry-After),
 * so are timeouts and network errors; other statuses and unparsable answers are not.
 */
export async function postJson(
  provider: string,
  url: string,
  body: string,
  headers: Record<string, string>,
  options: PostOptions,
  deps: HttpDeps,
): Promise<unknown> {
  const controller = new AbortController()
  let timedOut = false
  const timer = deps.timers.setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  const onAbort = () => controller.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    if (options.signal?.aborted) throw options.signal.reason
    let res: Response
    try {
      res = await deps.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
        body,
        signal: controller.signal,
        // never follow a redirect with the Authorization header or a signed body
        redirect: 'error',
      })
    } catch (err) {
      throw fetchFailure(provider, err, timedOut, options)
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      const retryable = res.status === 429 || res.status >= 500
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), deps.clock.now())
      throw providerFailure(provider, `HTTP ${res.status}`, {
        retryable,
        status: res.status,
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      })
    }
    let text: string
    try {
      text = await readBounded(res, options.maxResponseBytes, provider)
    } catch (err) {
      if ((err as { code?: string }).code === 'GH_AI_PROVIDER_FAILED') throw err
      throw fetchFailure(provider, err, timedOut, options)
    }
    try {
      return JSON.parse(text) as unknown
    } catch (err) {
      throw providerFailure(provider, 'the answer is not JSON', {}, err)
    }
  } finally {
    deps.timers.clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}

function fetchFailure(provider: string, err: unknown, timedOut: boolean, options: PostOptions): unknown {
  if (options.signal?.aborted) return options.signal.reason
  if (timedOut) return Object.assign(new AiProviderTimeout(provider, options.timeoutMs, { cause: err }), { retryable: true })
  const code = (err as { cause?: { code?: string } })?.cause?.code
  return providerFailure(provider, `network error${code ? ` (${code})` : ''}`, { retryable: true }, err)
}
