import { createRequire } from 'node:module'
import type { Logger } from 'pino'

export type { Logger }

// pino, and pino-pretty for a terminal, load when the first logger is made: a CLI call that logs nothing does
// not pay for them (issue 14). Both are CommonJS, so loading them stays synchronous.
const load = createRequire(import.meta.url)

/** Paths pino blanks out wherever they appear (docs/conventions.md §17): secrets are never logged. */
export const REDACT_PATHS = [
  'privateKey',
  '*.privateKey',
  'passphrase',
  '*.passphrase',
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'pin',
  '*.pin',
  'pkcs11Pin',
  '*.pkcs11Pin',
  'req.headers.authorization',
  'headers.authorization',
]

export interface LoggerOptions {
  level?: string
  /** 'auto' = readable when the destination is a terminal, JSON otherwise */
  format?: 'auto' | 'json' | 'pretty'
  /** file descriptor, default 2 (stderr): stdout stays for command output */
  fd?: number
}

/** The one pino root; modules take `log.child({ module: 'broker.auth' })`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 2
  const format = options.format ?? 'auto'
  const base = { level: options.level ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }
  const isTty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY
  const pino = load('pino') as typeof import('pino').default
  if (format === 'pretty' || (format === 'auto' && isTty)) {
    const pretty = load('pino-pretty') as typeof import('pino-pretty').PinoPretty
    return pino(base, pretty({ destination: fd, sync: true, colorize: Boolean(isTty), ignore: 'pid,hostname' }))
  }
  return pino(base, pino.destination({ fd, sync: false }))
}
