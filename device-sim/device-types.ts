import type { KeyAlgorithm, Timers } from '../certs/index.ts'
import type { alertMessage } from './device-settings.ts'
import type { BrokerAddress } from './mqtt-session.ts'
import type { RandomSource } from './telemetry.ts'

// The shapes of a simulated device (simulated-device.ts): options, injected dependencies, events, counters.

/** Real timers that keep the process alive (a reconnect or renewal is all a simulated device waits on), unlike certs' systemTimers. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

export interface SimulatedDeviceOptions {
  /** mqtts://HOST:PORT */
  broker: string | BrokerAddress
  /** the folder that holds the device's bundle folder <id>/; a renewed certificate and key are written there */
  bundlesDir?: string
  /** telemetry messages per second until a setting `interval` arrives. Default 0.2 */
  ratePerSecond?: number
  /** QoS of telemetry and alerts. Default 1 */
  qos?: 0 | 1
  /** renew the certificate over MQTT once in its renewal window. Default true */
  renew?: boolean
  /** the renewal window: the last fraction of the certificate's validity. Default 1/3 */
  renewalWindow?: number
  keyAlgorithm?: KeyAlgorithm
  /** reconnect back-off bounds. Default 1000 .. 30000 ms */
  backoff?: { minMs?: number; maxMs?: number }
  connectTimeoutMs?: number
  /** bound on an answer to a renewal request. Default 30000 ms */
  answerTimeoutMs?: number
  maxQueued?: number
  anomalyRate?: number
  /** the first reading comes after a random part of the interval (spreads a fleet). Default true */
  startJitter?: boolean
  keepInsights?: number
}

export interface SimulatedDeviceDeps {
  clock?: { now(): Date }
  timers?: Timers
  random?: RandomSource
  onEvent?: (event: SimEvent) => void
}

export type InsightMessage = { type: string; summary?: string; [k: string]: unknown }
export type SimEvent =
  | { type: 'connected'; deviceId: string; reconnect: boolean }
  | { type: 'disconnected'; deviceId: string; error: string | null }
  | { type: 'settings'; deviceId: string; version: number; intervalMs: number }
  | { type: 'insight' | 'throttled'; deviceId: string; message: InsightMessage }
  | { type: 'alert'; deviceId: string; alert: ReturnType<typeof alertMessage> }
  | { type: 'renewed'; deviceId: string; serial: string; notAfter: string }
  | { type: 'error'; deviceId: string; code: string; message: string }

export interface DeviceStats {
  deviceId: string
  connected: boolean
  sent: number
  acked: number
  queued: number
  dropped: number
  settingsApplied: number
  settingsVersion: number | null
  intervalMs: number
  insights: number
  throttled: number
  alerts: number
  renewals: number
  reconnects: number
  errors: number
  lastError: string | null
  lastInsights: InsightMessage[]
}
