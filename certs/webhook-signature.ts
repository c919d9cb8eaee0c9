import { createHmac } from 'node:crypto'

/**
 * The one signature of what Gatehouse POSTs to a URL an operator or an app runs (the AI bridge's webhook
 * provider, telemetry routes): `X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed
 * with the secret>`, with `X-Gatehouse-Timestamp: <unix seconds>` also inside the body, so the signature
 * covers it and a receiver can refuse replays.
 */
export function signWebhookBody(secret: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`
}

/** The headers of a signed JSON body sent at `timestamp` (unix seconds). */
export function signedHeaders(secret: string, rawBody: string, timestamp: number): Record<string, string> {
  return { 'x-gatehouse-timestamp': String(timestamp), 'x-gatehouse-signature': signWebhookBody(secret, rawBody) }
}
