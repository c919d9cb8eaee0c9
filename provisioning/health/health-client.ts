import { existsSync, readFileSync } from 'node:fs'
import { get as httpGet, type IncomingMessage } from 'node:http'
import { get as httpsGet } from 'node:https'
import { isLoopback } from '../api/serve-api.ts'
import { dataDirLayout } from '../data-dir/layout.ts'
import { StatusNotRunning, StatusUnreachable } from '../errors.ts'
import type { DeviceStatus, RegistryStore } from '../store/registry-store.ts'
import { SqliteRegistryStore } from '../store/sqlite-registry-store.ts'
import type { HealthReport } from './health.ts'

/** Where a running Gatehouse's HTTP API answers, and the CA to trust when it serves HTTPS. */
export interface HealthTarget {
  url: string
  /** PEM trust chain (the data directory's ca.pem) when the URL is https */
  ca?: string
}

/**
 * The address `gatehouse start` serves the API on, as seen from the same host: a wildcard address
 * (0.0.0.0, ::) is reached on loopback; off loopback (and on it with httpTls) the API is HTTPS with the
 * Gatehouse server certificate (serve-api.ts), so the data directory's CA chain is trusted for it.
 */
export function healthTarget(config: { dataDir: string; httpHost: string; httpPort: number; httpTls?: boolean }): HealthTarget {
  const host = config.httpHost === '0.0.0.0' ? '127.0.0.1' : config.httpHost === '::' ? '::1' : config.httpHost
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  if (isLoopback(config.httpHost) && !config.httpTls) return { url: `http://${shown}:${config.httpPort}` }
  const chain = dataDirLayout(config.dataDir).chain
  return { url: `https://${shown}:${config.httpPort}`, ...(existsSync(chain) && { ca: readFileSync(chain, 'utf8') }) }
}

/**
 * GET /healthz and /readyz of a running Gatehouse. GH_STATUS_NOT_RUNNING when nothing accepts the
 * connection, GH_STATUS_UNREACHABLE for any other failure (TLS, no answer within timeoutMs, not a report).
 */
export async function fetchHealth(target: HealthTarget, timeoutMs = 5000): Promise<{ liveness: HealthReport; readiness: HealthReport }> {
  const [liveness, readiness] = await Promise.all([getReport(target, '/healthz', timeoutMs), getReport(target, '/readyz', timeoutMs)])
  return { liveness, readiness }
}

function getReport(target: HealthTarget, path: string, timeoutMs: number): Promise<HealthReport> {
  return new Promise((resolve, reject) => {
    const url = `${target.url}${path}`
    const onResponse = (res: IncomingMessage) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        const report = parseReport(res.statusCode, body)
        if (report) resolve(report)
        else reject(new StatusUnreachable(target.url, `${path} answered ${res.statusCode} without a health report`))
      })
    }
    const req = target.url.startsWith('https:')
      ? httpsGet(url, { timeout: timeoutMs, ...(target.ca !== undefined && { ca: target.ca }) }, onResponse)
      : httpGet(url, { timeout: timeoutMs }, onResponse)
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))
    req.on('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code ?? err.message
      reject(
        err.code === 'ECONNREFUSED'
          ? new StatusNotRunning(target.url, reason)
          : new StatusUnreachable(target.url, `${reason}: ${err.message}`),
      )
    })
  })
}

function parseReport(statusCode: number | undefined, body: string): HealthReport | undefined {
  if (statusCode !== 200 && statusCode !== 503) return undefined
  try {
    const report = JSON.parse(body) as Partial<HealthReport>
    return (report.status === 'ok' || report.status === 'failed') && typeof report.checks === 'object' && report.checks !== null
      ? (report as HealthReport)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Devices by status: read-only from the data directory's SQLite registry (null when it has none yet), or
 * from the PostgreSQL registry when a database URL is configured (null when it cannot be read: /readyz
 * reports the registry's own state).
 */
export async function deviceCounts(dataDir: string, databaseUrl?: string): Promise<Record<DeviceStatus, number> | null> {
  if (databaseUrl !== undefined) {
    const { openRegistry } = await import('../store/open-registry.ts')
    const store = await openRegistry(dataDirLayout(dataDir).database, databaseUrl).catch(() => null)
    if (store === null) return null
    try {
      return await countByStatus(store)
    } catch {
      return null
    } finally {
      await store.close()
    }
  }
  const path = dataDirLayout(dataDir).database
  if (!existsSync(path)) return null
  const store = new SqliteRegistryStore(path, { readonly: true })
  try {
    return await countByStatus(store)
  } finally {
    store.close()
  }
}

async function countByStatus(store: Pick<RegistryStore, 'countDevices'>): Promise<Record<DeviceStatus, number>> {
  return {
    active: await store.countDevices({ status: 'active' }),
    disabled: await store.countDevices({ status: 'disabled' }),
    revoked: await store.countDevices({ status: 'revoked' }),
  }
}
