import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readBundle, readBundles, writeBundle } from './bundle-files.ts'
import { simIds, type SimCliDeps, type SimOptions, type SimSummary } from './cli.ts'
import { claimDevice } from './enrollment.ts'
import { SimBundleStale, SimClaimUnreadable, SimNoBundles, SimNoConnection } from './errors.ts'
import type { DeviceBundle } from './fleet.ts'
import { parseBrokerUrl, type BrokerAddress } from './mqtt-session.ts'
import { createSimulation, type SimulationTotals } from './simulation.ts'
import type { SimEvent } from './simulated-device.ts'
import { createStatusLine, formatSummary } from './status-line.ts'

/** What `gatehouse sim` does once its options are parsed (device-sim/cli.ts declares them). */

/** A started but silent device fleet gives up after this long without a single connection. */
const GIVE_UP_MS = 30_000

async function loadFleet(options: SimOptions, deps: SimCliDeps, broker: BrokerAddress): Promise<DeviceBundle[]> {
  if (!options.provision && options.claim === undefined) {
    const found = readBundles(options.bundles)
    if (found.length === 0) throw new SimNoBundles(options.bundles)
    if (found.length < options.devices)
      deps.io.err(`sim: only ${found.length} device bundles in ${options.bundles}; simulating ${found.length}\n`)
    return found.slice(0, options.devices)
  }
  const ids = simIds(options.devices, options.prefix)
  const have = new Map<string, DeviceBundle>()
  for (const id of ids) {
    const found = readBundle(options.bundles, id)
    if (found) have.set(id, found)
  }
  if (options.provision && have.size > 0 && deps.staleBundles) {
    const stale = await deps.staleBundles([...have.values()], { ...(options.dataDir && { dataDir: options.dataDir }) })
    if (stale.length > 0) {
      const shown = stale.slice(0, 5).map((s) => `${join(options.bundles, s.deviceId)} (${s.why})`)
      throw new SimBundleStale(options.bundles, [...shown, ...(stale.length > 5 ? [`and ${stale.length - 5} more`] : [])].join('; '))
    }
  }
  const missing = ids.filter((id) => !have.has(id))
  if (missing.length > 0 && options.provision) {
    deps.io.err(`sim: provisioning ${missing.length} devices (${missing[0]}..${missing.at(-1)}) into ${options.bundles}\n`)
    const made = await deps.provision(missing, {
      group: options.group,
      bundlesDir: options.bundles,
      ...(options.dataDir && { dataDir: options.dataDir }),
      ...(options.tier && { tier: options.tier }),
    })
    for (const b of made) have.set(b.deviceId, b)
  } else if (missing.length > 0 && options.claim !== undefined) {
    deps.io.err(`sim: claiming ${missing.length} devices (${missing[0]}..${missing.at(-1)}) with the claim in ${options.claim}\n`)
    const claim = readClaim(options.claim)
    const tokens = options.tokens === undefined ? [] : readTokens(options.tokens)
    if (options.tokens !== undefined && tokens.length < missing.length)
      throw new SimClaimUnreadable(options.tokens, `${tokens.length} tokens for ${missing.length} devices`)
    for (const [i, id] of missing.entries()) {
      const result = await claimDevice({ claim, broker, deviceId: id, ...(tokens[i] !== undefined && { token: tokens[i] }) })
      writeBundle(options.bundles, result.bundle)
      have.set(id, result.bundle)
    }
  }
  return ids.map((id) => have.get(id) as DeviceBundle)
}

function readClaim(dir: string): { cert: string; key: string; ca: string } {
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8')
    } catch (err) {
      throw new SimClaimUnreadable(dir, `${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
    }
  }
  return { cert: read('cert.pem'), key: read('key.pem'), ca: read('ca.pem') }
}

function readTokens(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .map((t) => t.trim())
      .filter((t) => t !== '')
  } catch (err) {
    throw new SimClaimUnreadable(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message, { cause: err })
  }
}

export async function runSim(options: SimOptions, deps: SimCliDeps): Promise<void> {
  const { io } = deps
  const broker = parseBrokerUrl(options.broker)
  const bundles = await loadFleet(options, deps, broker)
  const status = createStatusLine(io, options.reportEvery * 1000)
  const onEvent = (e: SimEvent) => {
    if (options.json) return
    if (e.type === 'insight') status.println(`${e.deviceId} insight: ${String(e.message.summary ?? JSON.stringify(e.message))}`)
    else if (e.type === 'throttled')
      status.println(`${e.deviceId} throttled: ${String(e.message.reason ?? '?')} until ${String(e.message.retryAt ?? '?')}`)
    else if (e.type === 'renewed') status.println(`${e.deviceId} renewed: serial ${e.serial}, valid until ${e.notAfter}`)
  }
  const sim = createSimulation(
    bundles,
    { broker, ratePerSecond: options.rate, qos: options.qos === '1' ? 1 : 0, renew: options.renew, bundlesDir: options.bundles },
    { onEvent },
  )
  const startedAt = performance.now()
  let stopReason: string | null = null
  let wake: () => void = () => {}
  const off = (deps.onSignal ?? processSignals)((signal) => {
    stopReason = signal
    wake()
  })
  const starting = sim.start()
  try {
    const deadline = options.duration === undefined ? Infinity : startedAt + options.duration
    while (stopReason === null) {
      const now = performance.now()
      if (now >= deadline) break
      if (sim.totals().everConnected === 0 && now - startedAt >= GIVE_UP_MS) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(1000, deadline - now))
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      status.update(sim.totals(), (performance.now() - startedAt) / 1000)
    }
  } finally {
    off()
  }
  const connectedAtEnd = sim.totals().connected
  const final = await sim.stop()
  await starting
  status.clear()
  const durationSeconds = Number(((performance.now() - startedAt) / 1000).toFixed(2))
  const summary = summaryOf(final, connectedAtEnd, durationSeconds, broker.url)
  if (options.json) io.out(`${JSON.stringify(summary, null, 2)}\n`)
  else io.out(formatSummary(summary))
  if (final.everConnected === 0) throw new SimNoConnection(broker.url, sim.lastError() ?? 'none')
}

function summaryOf(t: SimulationTotals, connected: number, durationSeconds: number, broker: string): SimSummary {
  const { devices, everConnected, sent, acked, settingsApplied, insights, throttled, alerts, renewals, reconnects, dropped, errors } = t
  const messagesPerSecond = durationSeconds > 0 ? Number((sent / durationSeconds).toFixed(2)) : 0
  return {
    broker,
    devices,
    connected,
    everConnected,
    sent,
    acked,
    messagesPerSecond,
    settingsApplied,
    insights,
    throttled,
    alerts,
    renewals,
    reconnects,
    dropped,
    errors,
    durationSeconds,
  }
}

function processSignals(handler: (signal: string) => void): () => void {
  const onInt = () => handler('SIGINT')
  const onTerm = () => handler('SIGTERM')
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  return () => {
    process.removeListener('SIGINT', onInt)
    process.removeListener('SIGTERM', onTerm)
  }
}
