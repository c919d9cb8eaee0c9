import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'

/** Clock ticks per second for /proc/PID/stat utime/stime (USER_HZ; 100 on Linux, asked once). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** A process's CPU time so far (user + system, ms, 10 ms resolution) and resident set size (bytes). */
export interface ProcSample {
  cpuMs: number
  rssBytes: number
}

/**
 * Reads /proc/PID/stat (utime + stime, fields 14 and 15) and /proc/PID/status (VmRSS) of one process:
 * the broker's own figures, nothing of its children or of the load generator.
 */
export function sampleProcess(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKiB = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN)
  return { cpuMs: ((utime + stime) * 1000) / TICKS_PER_SECOND, rssBytes: rssKiB * 1024 }
}

/**
 * How busy the machine is besides us (other users share these 2 cores): the 1-minute load average and
 * Linux's CPU pressure (share of the last 10 / 60 s in which some runnable task waited for a CPU).
 */
export function machineLoad(): { loadAverage1m: number; cpuPressureSome10s: number | null; cpuPressureSome60s: number | null } {
  let avg10: number | null = null
  let avg60: number | null = null
  try {
    const some = /^some avg10=([\d.]+) avg60=([\d.]+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    if (some) {
      avg10 = Number(some[1])
      avg60 = Number(some[2])
    }
  } catch {
    // no PSI on this kernel
  }
  return { loadAverage1m: loadavg()[0] ?? NaN, cpuPressureSome10s: avg10, cpuPressureSome60s: avg60 }
}
