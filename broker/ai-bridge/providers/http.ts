import { HttpPostFailed, httpPost, type HttpPostAnswer, type HttpPostDeps } from '../../http-post.ts'
import { AiProviderFailed, AiProviderTimeout } from '../../errors.ts'
import type { FailureInfo } from './provider.ts'

export type HttpDeps = HttpPostDeps

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
  let res: HttpPostAnswer
  try {
    res = await httpPost(
      {
        url,
        body,
        headers: { accept: 'application/json', ...headers },
        timeoutMs: options.timeoutMs,
        maxResponseBytes: options.maxResponseBytes,
        oversize: 'fail',
        // never follow a redirect with the Authorization header or a signed body
        redirect: 'error',
        ...(options.signal && { signal: options.signal }),
      },
      deps,
    )
  } catch (err) {
    if (!(err instanceof HttpPostFailed)) throw err
    if (err.reason === 'timeout')
      throw Object.assign(new AiProviderTimeout(provider, options.timeoutMs, { cause: err }), { retryable: true })
    if (err.reason === 'too-large') throw providerFailure(provider, err.message)
    throw providerFailure(provider, err.message, { retryable: true }, err)
  }
  if (!res.ok) {
    throw providerFailure(provider, `HTTP ${res.status}`, {
      retryable: res.status === 429 || res.status >= 500,
      status: res.status,
      ...(res.retryAfterMs !== undefined && { retryAfterMs: res.retryAfterMs }),
    })
  }
  try {
    return JSON.parse(res.body) as unknown
  } catch (err) {
    throw providerFailure(provider, 'the answer is not JSON', {}, err)
  }
}
