import type { SimSummary } from './cli.ts'
import type { SimulationTotals } from './simulation.ts'

/**
 * The simulator's live summary on stderr: one line redrawn every second on a terminal, or one line
 * every `reportEveryMs` otherwise (logs, pipes). Insight lines go to stdout; on a terminal the
 * summary line is cleared first so they do not mix.
 */
export function createStatusLine(io: { out(text: string): void; err(text: string): void; isTty: boolean }, reportEveryMs: number) {
  let last = { at: 0, sent: 0 }
  let lastPrinted = 0
  let drawn = false
  const clear = () => {
    if (drawn) io.err('\r\x1b[K')
    drawn = false
  }
  return {
    update(t: SimulationTotals, elapsedSeconds: number): void {
      const dt = elapsedSeconds - last.at
      const rate = dt > 0 ? (t.sent - last.sent) / dt : 0
      last = { at: elapsedSeconds, sent: t.sent }
      const line =
        `sim ${elapsedSeconds.toFixed(0)}s: connected ${t.connected}/${t.devices}, ${rate.toFixed(1)} msg/s, sent ${t.sent}, ` +
        `settings applied ${t.settingsApplied}, insights ${t.insights}, alerts ${t.alerts}, renewals ${t.renewals}, errors ${t.errors}`
      if (io.isTty) {
        clear()
        io.err(line)
        drawn = true
      } else if (elapsedSeconds * 1000 - lastPrinted >= reportEveryMs) {
        lastPrinted = elapsedSeconds * 1000
        io.err(`${line}\n`)
      }
    },
    println(text: string): void {
      clear()
      io.out(`${text}\n`)
    },
    clear,
  }
}

export function formatSummary(s: SimSummary): string {
  return (
    `sim: ${s.devices} devices against ${s.broker} for ${s.durationSeconds.toFixed(1)} s\n` +
    `  connected         ${s.connected}/${s.devices} at the end (${s.everConnected} connected at some point)\n` +
    `  sent              ${s.sent} messages (${s.acked} acknowledged), ${s.messagesPerSecond} msg/s\n` +
    `  settings applied  ${s.settingsApplied}\n` +
    `  insights          ${s.insights} (${s.throttled} throttle notices)\n` +
    `  alerts            ${s.alerts}\n` +
    `  renewals          ${s.renewals}\n` +
    `  reconnects        ${s.reconnects}\n` +
    `  dropped           ${s.dropped}\n` +
    `  errors            ${s.errors}\n`
  )
}
