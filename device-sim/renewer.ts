import type { MqttClient } from 'mqtt'
import { CertInvalid, parseCertificatesPem, type KeyAlgorithm, type KeyAndCsr, type Timers } from '../certs/index.ts'
import { writeBundle } from './bundle-files.ts'
import { SimBundleUnwritable } from './errors.ts'
import { requestRenewal } from './enrollment.ts'
import type { DeviceBundle } from './fleet.ts'
import type { RandomSource } from './telemetry.ts'

/**
 * A device's certificate renewal over MQTT (docs/device-lifecycle.md), by itself: when Gatehouse's
 * renewal notice arrives (devices/{id}/renewal/notice: the certificate is in the server's renewal
 * window) it asks for a new one with a new key, and on success hands the new bundle to the device,
 * which switches without losing telemetry. As a fallback (a broker without notices) it also asks once
 * its own computation says the window is open (the last `renewalWindow` of its validity).
 * - GH_RENEWAL_TOO_EARLY: waits until the answer's renewAfter, then asks again;
 * - no answer: asks again later with the same key (a repeated request gets the same certificate);
 * - other refusals: counted, asked again after a back-off (30 s doubling, at most 1 h).
 */

export type RenewOutcome =
  | { ok: true; serial: string; notAfter: string }
  | { ok: false; code: string; message: string; retryAt: string | null }

export interface RenewerDeps {
  deviceId: string
  bundle(): DeviceBundle
  /** the live session, or null when not connected */
  session(): MqttClient | null
  switchTo(next: DeviceBundle): Promise<boolean>
  isRunning(): boolean
  clock: { now(): Date }
  timers: Timers
  random: RandomSource
  onRenewed(serial: string, notAfter: string): void
  onError(code: string, message: string): void
}

export interface RenewerOptions {
  enabled: boolean
  renewalWindow?: number
  keyAlgorithm?: KeyAlgorithm
  answerTimeoutMs?: number
  bundlesDir?: string
}

const MAX_TIMER_MS = 24 * 3600_000
const TOO_EARLY = 'GH_RENEWAL_TOO_EARLY'

/** When a certificate's renewal window opens: notAfter - window x validity (GH_CERT_INVALID if unreadable). */
export function renewalWindowOpens(certPem: string, window = 1 / 3): Date {
  const [cert] = parseCertificatesPem(certPem) // the leaf comes first when cert.pem holds a chain
  if (!cert) throw new CertInvalid('no PEM certificate')
  const from = cert.notBefore.getTime()
  const to = cert.notAfter.getTime()
  return new Date(to - window * (to - from))
}

export function createRenewer(deps: RenewerDeps, options: RenewerOptions) {
  const window = options.renewalWindow ?? 1 / 3
  if (!(window > 0 && window <= 1)) throw new RangeError(`renewalWindow must be within (0, 1], not ${window}`)
  let timer: unknown = null
  let inFlight: Promise<RenewOutcome> | null = null
  let stopped = false
  let renewals = 0
  let failures = 0
  let retryAt: Date | null = null
  let unanswered: KeyAndCsr | undefined
  let opensFor: { cert: string; at: Date } | null = null

  function dueAt(): Date {
    if (retryAt) return retryAt
    const cert = deps.bundle().cert
    if (opensFor?.cert !== cert) opensFor = { cert, at: renewalWindowOpens(cert, window) }
    return opensFor.at
  }

  function schedule(): void {
    if (!options.enabled || stopped) return
    deps.timers.clearTimeout(timer)
    let due: Date
    try {
      due = dueAt()
    } catch (err) {
      const e = err as Error & { code?: string }
      return deps.onError(e.code ?? 'GH_CERT_INVALID', `its certificate cannot be read, so it does not renew: ${e.message}`)
    }
    const delay = Math.max(0, due.getTime() - deps.clock.now().getTime())
    timer = deps.timers.setTimeout(
      () => {
        timer = null
        if (deps.clock.now() >= dueAt()) void renewNow()
        else schedule()
      },
      Math.min(delay, MAX_TIMER_MS),
    )
  }

  function later(code: string, message: string): RenewOutcome {
    failures++
    const backoff = Math.min(3600_000, 30_000 * 2 ** Math.min(failures - 1, 10)) * (0.75 + 0.5 * deps.random())
    retryAt = new Date(deps.clock.now().getTime() + backoff)
    deps.onError(code, message)
    schedule()
    return { ok: false, code, message, retryAt: retryAt.toISOString() }
  }

  async function attempt(): Promise<RenewOutcome> {
    const client = deps.session()
    if (!client) return { ok: false, code: 'GH_SIM_NOT_CONNECTED', message: 'not connected: renews once connected', retryAt: null }
    let result: Awaited<ReturnType<typeof requestRenewal>>
    try {
      result = await requestRenewal(client, deps.deviceId, {
        ...(options.keyAlgorithm && { keyAlgorithm: options.keyAlgorithm }),
        ...(options.answerTimeoutMs !== undefined && { timeoutMs: options.answerTimeoutMs }),
        ...(unanswered && { key: unanswered }),
      })
    } catch (err) {
      const e = err as Error & { code?: string; answer?: { error?: { renewAfter?: unknown }; renewAfter?: unknown } }
      const code = e.code ?? 'GH_SIM_ANSWER_INVALID'
      if (code === 'GH_SIM_ANSWER_TIMEOUT') unanswered = (e as { key?: KeyAndCsr }).key ?? unanswered
      if (code === TOO_EARLY) {
        const when = new Date(String(e.answer?.error?.renewAfter ?? e.answer?.renewAfter ?? ''))
        if (!Number.isNaN(when.getTime())) {
          retryAt = when
          schedule()
          return { ok: false, code, message: e.message, retryAt: when.toISOString() }
        }
      }
      return later(code, e.message)
    }
    unanswered = undefined
    const next: DeviceBundle = { deviceId: deps.deviceId, cert: result.certificate, key: result.key.privateKeyPem, ca: result.chain }
    if (options.bundlesDir !== undefined) {
      try {
        writeBundle(options.bundlesDir, next)
      } catch (err) {
        const e = new SimBundleUnwritable(deps.deviceId, options.bundlesDir, (err as Error).message)
        deps.onError(e.code, e.message)
      }
    }
    renewals++
    failures = 0
    retryAt = null
    deps.onRenewed(result.serial, result.notAfter)
    if (deps.isRunning()) await deps.switchTo(next)
    return { ok: true, serial: result.serial, notAfter: result.notAfter }
  }

  function renewNow(): Promise<RenewOutcome> {
    inFlight ??= attempt().finally(() => (inFlight = null))
    return inFlight
  }

  return {
    schedule,
    renewNow,
    /** The broker's renewal notice: the window is open now, whatever renewalWindow says. */
    noticed(): void {
      if (!options.enabled || stopped || retryAt !== null) return
      void renewNow()
    },
    renewals: () => renewals,
    stop(): void {
      stopped = true
      deps.timers.clearTimeout(timer)
    },
    settled: (): Promise<unknown> => inFlight ?? Promise.resolve(),
  }
}
