import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { isLocalHostName, isPrivateAddress, signedHeaders } from '../../certs/index.ts'
import { HttpPostFailed, httpPost, type HttpPostAnswer, type HttpPostDeps } from '../http-post.ts'

/** One message of a batch, as the receiver gets it. */
export interface RoutedMessage {
  deviceId: string
  /** levels below devices/{id}/telemetry, joined with '/' ('' for the topic itself) */
  subtopic: string
  /** ISO 8601, when the broker took the message */
  at: string
  data: Record<string, unknown>
}

/** What a receiver answered: the status and the first 4 KiB of the body (for `route test`). */
export interface DeliveryAnswer {
  status: number
  body: string
}

export interface DeliverDeps extends HttpPostDeps {
  /** host name -> addresses; default node:dns lookup (all addresses) */
  resolve?(host: string): Promise<string[]>
}

/** A failed delivery: `retryable` for 5xx, 429, timeouts and network errors; not for a refused target or another 4xx. */
export class DeliveryFailed extends Error {
  override name = 'DeliveryFailed'
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** the answer's Retry-After, in ms (capped at a day) */
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

const ANSWER_BYTES = 4096
const resolveAll = async (host: string) => (await lookup(host, { all: true })).map((a) => a.address)

/**
 * Refuses a URL whose host is, or resolves to, a non-public address unless allowed (SSRF; README "Routes").
 * Checked before each POST, so a name that later resolves to a private address is refused too (a
 * resolver that answers differently between this check and the connection remains a residual risk).
 */
export async function assertPublicTarget(url: URL, allowPrivate: boolean, resolve: (host: string) => Promise<string[]>): Promise<void> {
  if (allowPrivate) return
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isLocalHostName(host)) throw new DeliveryFailed(`${url.host} is this machine (routes.allowPrivateTargets is off)`, false)
  let addresses: string[]
  try {
    addresses = isIP(host) ? [host] : await resolve(host)
  } catch {
    throw new DeliveryFailed(`${url.hostname} does not resolve`, true)
  }
  if (addresses.some(isPrivateAddress))
    throw new DeliveryFailed(`${url.hostname} resolves to a non-public address (routes.allowPrivateTargets is off)`, false)
}

/**
 * POSTs one signed batch: body { routeId, timestamp, messages }, headers X-Gatehouse-Timestamp and
 * X-Gatehouse-Signature (certs/webhook-signature.ts, the AI webhooks' signature) and X-Gatehouse-Route.
 * A 2xx resolves with the answer; anything else throws DeliveryFailed. Redirects are never followed.
 */
export async function deliverBatch(
  route: { id: string; url: string; secret: string },
  messages: readonly RoutedMessage[],
  options: { timeoutMs: number; allowPrivateTargets: boolean; signal?: AbortSignal },
  deps: DeliverDeps,
): Promise<DeliveryAnswer> {
  const url = new URL(route.url)
  await assertPublicTarget(url, options.allowPrivateTargets, deps.resolve ?? resolveAll)
  const timestamp = Math.floor(deps.clock.now().getTime() / 1000)
  const body = JSON.stringify({ routeId: route.id, timestamp, messages })
  let res: HttpPostAnswer
  try {
    res = await httpPost(
      {
        url,
        body,
        headers: { 'x-gatehouse-route': route.id, ...signedHeaders(route.secret, body, timestamp) },
        timeoutMs: options.timeoutMs,
        maxResponseBytes: ANSWER_BYTES,
        oversize: 'truncate',
        redirect: 'manual',
        ...(options.signal && { signal: options.signal }),
      },
      deps,
    )
  } catch (err) {
    if (err instanceof HttpPostFailed) throw new DeliveryFailed(err.message, true)
    throw err
  }
  if (res.ok) return { status: res.status, body: res.body }
  const retryable = res.status === 429 || res.status >= 500
  throw new DeliveryFailed(`HTTP ${res.status}`, retryable, res.status, res.retryAfterMs)
}
