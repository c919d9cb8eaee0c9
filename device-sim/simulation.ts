import type { DeviceBundle } from './fleet.ts'
import { parseBrokerUrl, type BrokerAddress } from './mqtt-session.ts'
import {
  SimulatedDevice,
  type DeviceStats,
  type SimEvent,
  type SimulatedDeviceDeps,
  type SimulatedDeviceOptions,
} from './simulated-device.ts'

/**
 * A fleet of simulated devices run together (what `gatehouse sim` runs, and what the benchmarks can
 * use as a load generator): started a bounded number at a time so N devices do not all handshake in
 * the same millisecond, counted together, stopped together.
 */

export interface SimulationOptions extends Omit<SimulatedDeviceOptions, 'broker'> {
  broker: string | BrokerAddress
  /** devices connecting at once while the fleet starts. Default 50 */
  startConcurrency?: number
}

/** The fleet's counters: sums over its devices (connected: now; everConnected: at least once). */
export interface SimulationTotals {
  devices: number
  connected: number
  everConnected: number
  sent: number
  acked: number
  queued: number
  dropped: number
  settingsApplied: number
  insights: number
  throttled: number
  alerts: number
  renewals: number
  reconnects: number
  errors: number
}

export interface Simulation {
  devices: readonly SimulatedDevice[]
  /** starts every device (a bounded number connecting at once); resolves once each has connected or timed out */
  start(): Promise<void>
  totals(): SimulationTotals
  /** every device's counters */
  stats(): DeviceStats[]
  /** the last error any device had (for the message when none could connect) */
  lastError(): string | null
  /** stops every device cleanly (bounded) and returns the final totals */
  stop(): Promise<SimulationTotals>
}

export function createSimulation(bundles: readonly DeviceBundle[], options: SimulationOptions, deps: SimulatedDeviceDeps = {}): Simulation {
  const broker = typeof options.broker === 'string' ? parseBrokerUrl(options.broker) : options.broker
  const everConnected = new Set<string>()
  const onEvent = (event: SimEvent) => {
    if (event.type === 'connected') everConnected.add(event.deviceId)
    deps.onEvent?.(event)
  }
  const devices = bundles.map((b) => new SimulatedDevice(b, { ...options, broker }, { ...deps, onEvent }))
  let stopping = false
  let started: Promise<void> | null = null

  function totals(): SimulationTotals {
    const t: SimulationTotals = {
      devices: devices.length,
      connected: 0,
      everConnected: everConnected.size,
      sent: 0,
      acked: 0,
      queued: 0,
      dropped: 0,
      settingsApplied: 0,
      insights: 0,
      throttled: 0,
      alerts: 0,
      renewals: 0,
      reconnects: 0,
      errors: 0,
    }
    for (const d of devices) {
      const s = d.stats()
      if (s.connected) t.connected++
      for (const k of [
        'sent',
        'acked',
        'queued',
        'dropped',
        'settingsApplied',
        'insights',
        'throttled',
        'alerts',
        'renewals',
        'reconnects',
        'errors',
      ] as const)
        t[k] += s[k]
    }
    return t
  }

  return {
    devices,
    start() {
      started ??= (async () => {
        let next = 0
        const waitMs = (options.connectTimeoutMs ?? 10_000) + 1000
        const worker = async () => {
          while (!stopping && next < devices.length) {
            const device = devices[next++] as SimulatedDevice
            device.start()
            await device.whenConnected(waitMs)
          }
        }
        await Promise.all(Array.from({ length: Math.max(1, Math.min(options.startConcurrency ?? 50, devices.length)) }, worker))
      })()
      return started
    },
    totals,
    stats: () => devices.map((d) => d.stats()),
    lastError: () =>
      devices
        .map((d) => d.stats().lastError)
        .filter((e): e is string => e !== null)
        .at(-1) ?? null,
    async stop() {
      stopping = true
      await Promise.all(devices.map((d) => d.stop()))
      return totals()
    },
  }
}
