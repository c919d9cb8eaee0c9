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

const LEVEL_VALUES: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
}

/**
 * A logger that makes its pino root (createLogger) on the first line written at or above its level: a
 * CLI command that logs nothing never loads pino (~26 ms of CPU, issue 14). Children are lazy the same way;
 * a call below the level, `level`, `isLevelEnabled` and `flush` need no pino; anything else makes it.
 * An unknown level makes it at once, so pino's own error is thrown where it always was.
 */
export function createLazyLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info'
  if (LEVEL_VALUES[level] === undefined) return createLogger(options)
  return lazyLogger(() => createLogger(options), level)
}

function lazyLogger(make: () => Logger, level: string): Logger {
  let real: Logger | undefined
  const threshold = LEVEL_VALUES[level] ?? 0
  const get = (): Logger => (real ??= make())
  const unloaded: Record<string, unknown> = {
    level,
    isLevelEnabled: (name: string) => (LEVEL_VALUES[name] ?? 0) >= threshold,
    flush: () => real?.flush(),
    child: (bindings: object, opts?: { level?: string }) => {
      const childLevel = opts?.level ?? level
      return LEVEL_VALUES[childLevel] === undefined
        ? get().child(bindings, opts)
        : lazyLogger(() => get().child(bindings, opts), childLevel)
    },
  }
  return new Proxy({} as Logger, {
    get(_target, key) {
      if (real === undefined && typeof key === 'string') {
        if (key in unloaded) return unloaded[key]
        const value = LEVEL_VALUES[key]
        if (value !== undefined && value < threshold) return () => {}
      }
      const logger = get()
      const v = Reflect.get(logger, key, logger)
      return typeof v === 'function' ? v.bind(logger) : v
    },
    set: (_target, key, value) => Reflect.set(get(), key, value),
    has: (_target, key) => key in get(),
  })
}
