import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { MqttClient } from 'mqtt'
import pino from 'pino'
import { normalizeSerial } from '../../certs/index.ts'
import { main } from '../../cli.ts'
import { loadConfig } from '../../config.ts'
import { claimDevice, requestRenewal } from '../../device-sim/enrollment.ts'
import { connectDevice, type DeviceBundle } from '../../device-sim/index.ts'
import { startGatehouse } from '../../gatehouse.ts'
import { GATEHOUSE_BIN } from '../helpers/run-cli.ts'
import { waitFor } from '../helpers/wait.ts'
import { killHard, startGatehouseProcess } from './gatehouse-process.ts'
import { STAGING_NOTE } from '../../provisioning/bundles/write-bundle.ts'

/**
 * SIGKILL chaos (issue 17, "Faults"): a real `gatehouse` process killed at a point a seeded generator
 * picks, during a batch provisioning, a burst of settings PATCHes from several apps, claim provisioning
 * over MQTT, renewals over MQTT and a CA rotation; then the invariants of the registry, the CA and the
 * devices are checked on the data directory it left. Used by `npm run chaos` (many rounds) and by
 * test/integration/faults/sigkill-chaos.test.ts (one round per scenario).
 */

export const SCENARIOS = ['batch', 'settings', 'claim', 'renewal', 'ca-rotate'] as const
export type Scenario = (typeof SCENARIOS)[number]

/**
 * Where a kill may land, in ms after the victim started: a CLI command (batch, ca-rotate) runs to its end
 * once first and the window is that duration (calibrate()), so kills spread over the whole of it; a
 * server's window opens once it listens, while the load runs.
 */
export const SERVER_WINDOW_MS: Partial<Record<Scenario, number>> = { settings: 3000, claim: 4000, renewal: 4000 }

/** The scenarios that are one command: they also get kills timed from their commit, seen from outside (AFTER_COMMIT). */
export const COMMAND_SCENARIOS: readonly Scenario[] = ['batch', 'ca-rotate']

/**
 * The kill windows of a scenario on this machine: a server's fixed window; for a command, 1.2 x one
 * uninterrupted run (from its start) and 1.2 x the time from its commit marker to its exit (afterCommit).
 */
export async function calibrate(template: Template, scenario: Scenario): Promise<{ window: number; afterCommit?: number }> {
  const fixed = SERVER_WINDOW_MS[scenario]
  if (fixed !== undefined) return { window: fixed }
  const whole = await runRound(template, scenario, 0, 600_000)
  if (whole.violations.length) throw new Error(`${scenario} fails without a kill: ${whole.violations.join('; ')}`)
  if (whole.commitMs === undefined) throw new Error(`${scenario}: its commit marker was never seen`)
  return { window: Math.round(whole.ranMs * 1.2), afterCommit: Math.max(1, Math.round((whole.ranMs - whole.commitMs) * 1.2)) }
}

export interface RoundResult {
  scenario: Scenario
  round: number
  killAtMs: number
  /** how long the victim ran: killAtMs, or less when it finished first */
  ranMs: number
  /** operations the victim acknowledged before it died */
  acknowledged: number
  /** 'from-start' (killAtMs after the start) or 'after-commit' (killAtMs after the commit marker was seen) */
  timing: 'from-start' | 'after-commit'
  /** ms after the start when the commit marker was seen (commands only; undefined when it never was) */
  commitMs?: number
  /** where the kill landed, read from what it left (see Victim.phase) */
  phase: string
  violations: string[]
}

/** mulberry32: a small seeded generator, so a failing round is replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'gatehouse', ...args], {
    out: (s) => void (stdout += s),
    err: (s) => void (stderr += s),
    isTty: false,
    env: { GATEHOUSE_LOG_LEVEL: 'silent', ...env },
  })
  if (code !== 0) throw new Error(`gatehouse ${args.join(' ')} exited ${code}: ${stderr}`)
  return { code, stdout, stderr }
}

const readBundle = (dir: string, deviceId: string): DeviceBundle => ({
  deviceId,
  cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
  key: readFileSync(join(dir, 'key.pem'), 'utf8'),
  ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
})

/** What every round starts from: an initialised data directory with one device, three apps' API keys and a claim. */
export interface Template {
  root: string
  apps: string[]
  claimId: string
}

export async function makeTemplate(root = mkdtempSync(join(tmpdir(), 'gatehouse-chaos-'))): Promise<Template> {
  const dataDir = join(root, 'data')
  await cli(['init', '--data-dir', dataDir])
  await cli(['device', 'create', 'keep-1', '--out', join(root, 'devices'), '--data-dir', dataDir])
  const apps: string[] = []
  for (const name of ['app-a', 'app-b', 'app-c']) {
    apps.push(
      (await cli(['apikey', 'create', '--name', name, '--scopes', 'settings:read,settings:write', '--data-dir', dataDir])).stdout.trim(),
    )
  }
  const claim = JSON.parse(
    (
      await cli([
        'claim',
        'create',
        '--group',
        'claimed',
        '--max-uses',
        '1000',
        '--out',
        join(root, 'claims'),
        '--json',
        '--data-dir',
        dataDir,
      ])
    ).stdout,
  ) as {
    claimId?: string
    id?: string
  }
  return { root, apps, claimId: (claim.claimId ?? claim.id)! }
}

interface Victim {
  /** starts the work; resolves once the process to kill is running */
  start(): Promise<{ kill(): Promise<void>; done: Promise<unknown> }>
  acknowledged(): number
  /**
   * Commands only: true once the registry commit happened, as seen from outside (the rows are readable, the
   * CA's ca/next directory exists): the marker AFTER_COMMIT kills are timed from. No kill point in product code.
   */
  committed?(): boolean
  /** where the kill landed, from the data directory after it (the process is gone): before the commit, past it and before the answer, ... */
  phase(): string
  /** checks what this scenario promises, on the data directory after the kill (Gatehouse not running) */
  check(violations: string[]): Promise<void>
}

/** A CLI command as its own process; done resolves with its exit code. */
function cliProcess(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_LOG_LEVEL: 'silent', ...env },
    stdio: 'ignore',
  })
  const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { kill: () => killHard(child, done), done }
}

function victims(work: string, template: Template): Record<Scenario, () => Victim> {
  const dataDir = join(work, 'data')
  const templateIssuing = issuingSerial(dataDir)
  const broker = (port: number) => ({ host: '127.0.0.1', port, url: `mqtts://127.0.0.1:${port}` })
  let exitedClean = false
  return {
    batch: () => ({
      async start() {
        const p = cliProcess([
          'device',
          'create-batch',
          '--count',
          '8',
          '--prefix',
          'b-',
          '--out',
          join(work, 'out'),
          '--data-dir',
          dataDir,
        ])
        void p.done.then((code) => (exitedClean = code === 0))
        return p
      },
      acknowledged: () => (exitedClean ? 8 : 0),
      committed: () => batchRegistered(dataDir) > 0,
      phase() {
        if (exitedClean) return 'finished'
        if (batchRegistered(dataDir) === 0) return 'before-commit'
        const out = join(work, 'out')
        const staged = readdirSync(out).filter((n) => n.startsWith('.gatehouse-staging-'))
        const unmoved = staged.some((s) => readdirSync(join(out, s)).some((n) => n.startsWith('b-')))
        return unmoved ? 'committed, bundles not all moved out' : 'committed, bundles in place, before exit'
      },
      async check(violations) {
        const db = openReadonly(dataDir)
        const ids = (db.prepare("SELECT id FROM devices WHERE id LIKE 'b-%'").pluck().all() as string[]).sort()
        db.close()
        if (ids.length !== 0 && ids.length !== 8) violations.push(`batch: ${ids.length} of 8 devices registered (all or none)`)
        if (exitedClean && ids.length !== 8) violations.push('batch: acknowledged, but devices are missing')
        const out = join(work, 'out')
        const staged = existsSync(out) ? readdirSync(out).filter((n) => n.startsWith('.gatehouse-staging-')) : []
        const keyOf = (id: string) => [join(out, id), ...staged.map((s) => join(out, s, id))].some((d) => existsSync(join(d, 'key.pem')))
        for (const id of ids) if (!keyOf(id)) violations.push(`batch: ${id} registered without its key written`)
        const placed = existsSync(out) ? readdirSync(out).filter((n) => n.startsWith('b-')) : []
        for (const id of placed) if (!ids.includes(id)) violations.push(`batch: bundle ${id} in place but the device is missing`)
        for (const s of staged) {
          const orphans = readdirSync(join(out, s)).filter((n) => n.startsWith('b-') && !ids.includes(n))
          if (orphans.length && !existsSync(join(out, s, STAGING_NOTE)))
            violations.push(`batch: ${s} holds bundles of missing devices without a note`)
        }
      },
    }),
    'ca-rotate': () => ({
      async start() {
        const p = cliProcess(['ca', 'rotate', '--data-dir', dataDir])
        void p.done.then((code) => (exitedClean = code === 0))
        return p
      },
      acknowledged: () => (exitedClean ? 1 : 0),
      // ca/next is the rotation's commit point (provisioning/ca/rotation.ts); the registry's audit and event follow it
      committed: () => existsSync(join(dataDir, 'ca', 'next')) || issuingSerial(dataDir) !== templateIssuing,
      phase() {
        if (exitedClean) return 'finished'
        if (existsSync(join(dataDir, 'ca', 'next'))) return 'committed (ca/next), files not all moved'
        if (issuingSerial(dataDir) === templateIssuing) return 'before-commit'
        return rotations(dataDir) > 0 ? 'committed, audit written, before exit' : 'committed, new CA in place, audit not written'
      },
      async check(violations) {
        if (exitedClean && rotations(dataDir) < 1)
          violations.push('ca-rotate: acknowledged, but no rotation in the registry')
          // every rotation in place on disk has its audit entry and event once the registry is next opened (here:
          // before the restart); a rotation killed before its commit has neither
        ;(await openControlPlaneQuiet(dataDir)).close()
        const live = issuingSerial(dataDir)
        const db = openReadonly(dataDir)
        const audited = (db.prepare("SELECT details FROM audit_log WHERE action = 'ca.rotated'").pluck().all() as string[]).map(
          (d) => (JSON.parse(d) as { serial: string }).serial,
        )
        const pending = db.prepare("SELECT value FROM meta WHERE key = 'ca.rotation.pending'").pluck().get() as string | undefined
        db.close()
        const rotated = live !== templateIssuing
        const serial = normalizeSerial(new X509Certificate(live).serialNumber)
        if (rotated && !audited.includes(serial))
          violations.push(`ca-rotate: issuing CA ${serial} in place on disk without its audit entry`)
        if (rotated && rotations(dataDir) < 1)
          violations.push(`ca-rotate: issuing CA ${serial} in place on disk without its ca.rotated event`)
        if (!rotated && audited.length) violations.push('ca-rotate: a rotation audited that is not on disk')
        if (audited.length > 1) violations.push(`ca-rotate: ${audited.length} audit entries for one rotation`)
        if (pending) violations.push('ca-rotate: the rotation plan was not settled on the next open')
      },
    }),
    settings: () => {
      const acked = new Map<number, { k: number; version: number }>()
      const stored = () => {
        const db = openReadonly(dataDir)
        const version = Number(db.prepare("SELECT version FROM device_settings WHERE device_id = 'keep-1'").pluck().get() ?? 0)
        db.close()
        return version
      }
      return {
        async start() {
          const g = await startGatehouseProcess(dataDir)
          let stop = false
          const app = async (i: number) => {
            for (let k = 1; !stop && k < 10_000; k++) {
              try {
                const res = await fetch(`${g.httpUrl}/v1/devices/keep-1/settings`, {
                  method: 'PATCH',
                  headers: { authorization: `Bearer ${template.apps[i]}`, 'content-type': 'application/merge-patch+json' },
                  body: JSON.stringify({ [`app${i}`]: k }),
                })
                if (res.status === 200) acked.set(i, { k, version: Number(JSON.parse(res.headers.get('etag') ?? '"0"')) })
                else await res.body?.cancel()
              } catch {
                return // the process is gone
              }
            }
          }
          const done = Promise.all(template.apps.map((_, i) => app(i)))
          return {
            kill: async () => {
              await killHard(g.child, g.exited)
              stop = true
            },
            done,
          }
        },
        acknowledged: () => [...acked.values()].reduce((n, a) => n + a.k, 0),
        // a version above every acknowledged one: a PATCH committed whose answer never left
        phase: () =>
          stored() > Math.max(0, ...[...acked.values()].map((a) => a.version))
            ? 'a change committed, not acknowledged'
            : 'between acknowledged changes',
        async check(violations) {
          const db = openReadonly(dataDir)
          const version = Number(db.prepare("SELECT version FROM device_settings WHERE device_id = 'keep-1'").pluck().get() ?? 0)
          db.close()
          const control = await openControlPlaneQuiet(dataDir)
          const desired = (await control.settings.getDevice('keep-1')).desired as Record<string, number>
          control.close()
          for (const [i, a] of acked) {
            if ((desired[`app${i}`] ?? 0) < a.k)
              violations.push(`settings: app${i} was acknowledged ${a.k} but ${desired[`app${i}`]} is stored`)
            if (version < a.version) violations.push(`settings: version went back from ${a.version} to ${version}`)
          }
        },
      }
    },
    claim: () => {
      const acked: { id: string; serial: string }[] = []
      const claimDir = join(work, 'claims', template.claimId)
      return {
        async start() {
          const g = await startGatehouseProcess(dataDir)
          const claim = {
            cert: readFileSync(join(claimDir, 'cert.pem'), 'utf8'),
            key: readFileSync(join(claimDir, 'key.pem'), 'utf8'),
            ca: readFileSync(join(claimDir, 'ca.pem'), 'utf8'),
          }
          const run = async (lane: number) => {
            for (let n = 0; n < 500; n++) {
              const id = `c-${lane}-${n}`
              try {
                const r = await claimDevice({ claim, broker: broker(g.mqttPort), deviceId: id, timeoutMs: 10_000, connectTimeoutMs: 5000 })
                acked.push({ id, serial: r.serial })
              } catch {
                return
              }
            }
          }
          return { kill: () => killHard(g.child, g.exited), done: Promise.all([run(0), run(1)]) }
        },
        acknowledged: () => acked.length,
        phase() {
          const db = openReadonly(dataDir)
          const registered = Number(db.prepare("SELECT COUNT(*) FROM devices WHERE id LIKE 'c-%'").pluck().get())
          db.close()
          return registered > acked.length ? 'a claim committed, not acknowledged' : 'between acknowledged claims'
        },
        async check(violations) {
          const db = openReadonly(dataDir)
          for (const a of acked) {
            const cert = db.prepare('SELECT status FROM certificates WHERE serial = ? AND device_id = ?').pluck().get(a.serial, a.id)
            if (cert !== 'active') violations.push(`claim: ${a.id} was acknowledged with ${a.serial}, registry has ${String(cert)}`)
          }
          db.close()
        },
      }
    },
    renewal: () => {
      let latest = readBundle(join(work, 'devices', 'keep-1'), 'keep-1')
      const acked: string[] = []
      return {
        async start() {
          const g = await startGatehouseProcess(dataDir, { GATEHOUSE_RENEWAL_WINDOW: '1' })
          const run = async () => {
            for (let n = 0; n < 500; n++) {
              let client: MqttClient | undefined
              try {
                client = (await connectDevice(latest, { port: g.mqttPort, connectTimeoutMs: 5000 })).client
                const r = await requestRenewal(client, 'keep-1', { timeoutMs: 10_000 })
                latest = { ...latest, cert: r.certificate, key: r.key.privateKeyPem, ca: r.chain }
                acked.push(r.serial)
              } catch {
                return
              } finally {
                client?.end(true)
              }
            }
          }
          return { kill: () => killHard(g.child, g.exited), done: run() }
        },
        acknowledged: () => acked.length,
        phase() {
          const db = openReadonly(dataDir)
          const certs = Number(db.prepare("SELECT COUNT(*) FROM certificates WHERE device_id = 'keep-1'").pluck().get())
          db.close()
          return certs > acked.length + 1 ? 'a renewal committed, not acknowledged' : 'between acknowledged renewals'
        },
        async check(violations) {
          const db = openReadonly(dataDir)
          for (const serial of acked) {
            if (db.prepare('SELECT 1 FROM certificates WHERE serial = ?').get(serial) === undefined)
              violations.push(`renewal: acknowledged ${serial} is missing`)
          }
          db.close()
          keepCredentials.set(work, latest)
        },
      }
    },
  }
}

/** the credentials keep-1 holds after a round (renewal changes them) */
const keepCredentials = new Map<string, DeviceBundle>()

function openReadonly(dataDir: string): Database.Database {
  return new Database(join(dataDir, 'gatehouse.db'), { readonly: true, fileMustExist: true })
}

/** devices of the batch scenario in the registry (0 before its commit, 8 after) */
function batchRegistered(dataDir: string): number {
  const db = openReadonly(dataDir)
  const n = Number(db.prepare("SELECT COUNT(*) FROM devices WHERE id LIKE 'b-%'").pluck().get())
  db.close()
  return n
}

/** the live issuing CA certificate, as text (it changes when a rotation's files are moved into place) */
function issuingSerial(dataDir: string): string {
  const path = join(dataDir, 'ca', 'issuing.crt')
  return existsSync(path) ? readFileSync(path, 'utf8') : ''
}

function rotations(dataDir: string): number {
  const db = openReadonly(dataDir)
  const n = Number(db.prepare("SELECT COUNT(*) FROM events WHERE type LIKE 'ca.%rotat%'").pluck().get())
  db.close()
  return n
}

async function openControlPlaneQuiet(dataDir: string) {
  const { openControlPlane } = await import('../../provisioning/index.ts')
  return openControlPlane(dataDir, {}, { log: pino({ level: 'silent' }) })
}

/** What holds after every kill, whatever the scenario: a consistent registry, a usable CA, devices served their latest settings. */
async function checkCommon(work: string, violations: string[]): Promise<void> {
  const dataDir = join(work, 'data')
  const db = openReadonly(dataDir)
  if (db.pragma('integrity_check', { simple: true }) !== 'ok') violations.push('registry: integrity_check failed')
  const incomplete = db
    .prepare(
      `SELECT d.id FROM devices d WHERE d.status = 'active' AND
         (SELECT COUNT(*) FROM certificates c WHERE c.device_id = d.id AND c.status = 'active') <> 1`,
    )
    .pluck()
    .all() as string[]
  for (const id of incomplete) violations.push(`registry: active device ${id} does not have exactly one active certificate`)
  const noSettings = db.prepare('SELECT id FROM devices WHERE id NOT IN (SELECT device_id FROM device_settings)').pluck().all() as string[]
  void noSettings // a settings record is made lazily on first read: not an invariant
  const version = Number(db.prepare("SELECT version FROM device_settings WHERE device_id = 'keep-1'").pluck().get() ?? 1)
  db.close()
  // restart: the CA must load (old and new issuing CA, or only the old), keep-1 reconnects and gets its latest settings
  let gatehouse: Awaited<ReturnType<typeof startGatehouse>>
  try {
    gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false }, {}), {
      log: pino({ level: 'silent' }),
    })
  } catch (err) {
    violations.push(`restart failed: ${(err as Error).message}`)
    return
  }
  try {
    const creds = keepCredentials.get(work) ?? readBundle(join(work, 'devices', 'keep-1'), 'keep-1')
    const { client } = await connectDevice(creds, { port: gatehouse.mqtt.port, connectTimeoutMs: 10_000 })
    const doc = new Promise<{ version: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no settings document within 10 s')), 10_000)
      client.on('message', (_t, payload) => {
        clearTimeout(timer)
        resolve(JSON.parse(payload.toString()) as { version: number })
      })
    })
    await client.subscribeAsync('devices/keep-1/settings', { qos: 1 })
    const got = await doc.catch((err: Error) => ({ version: -1, err }))
    if (got.version < version) violations.push(`keep-1 received settings version ${got.version}, the registry has ${version}`)
    client.end(true)
    const fresh = await gatehouse.control.authority.createDevice({ id: 'after-kill' }, 'operator:chaos')
    const { client: c2 } = await connectDevice(
      { deviceId: 'after-kill', cert: fresh.certificatePem, key: fresh.privateKey!.pem, ca: fresh.chainPem },
      { port: gatehouse.mqtt.port, connectTimeoutMs: 10_000 },
    )
    c2.end(true)
  } catch (err) {
    violations.push(`after restart: ${(err as Error).message}`)
  } finally {
    await gatehouse.close()
  }
}

/**
 * One round: copy the template, start the victim, kill it killAtMs after its start, or (timing 'after-commit',
 * commands only) killAtMs after its commit marker is seen from outside; then read where it landed and check.
 */
export async function runRound(
  template: Template,
  scenario: Scenario,
  round: number,
  killAtMs: number,
  timing: 'from-start' | 'after-commit' = 'from-start',
): Promise<RoundResult> {
  const work = mkdtempSync(join(tmpdir(), `gatehouse-chaos-${scenario}-`))
  try {
    cpSync(template.root, work, { recursive: true })
    const victim = victims(work, template)[scenario]()
    const started = performance.now()
    const running = await victim.start()
    let finished = false
    void running.done.then(() => (finished = true))
    // the commit marker, watched from outside every 2 ms while the victim runs (commands only)
    let commitMs: number | undefined
    const watching = victim.committed
      ? waitFor(
          () => finished || (victim.committed?.() && (commitMs = Math.round(performance.now() - started))),
          600_000,
          'the commit marker',
          2,
        )
      : Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const delay = () => new Promise((r) => (timer = setTimeout(r, killAtMs)))
    await Promise.race([timing === 'after-commit' ? watching.then(delay) : delay(), running.done])
    clearTimeout(timer)
    const ranMs = Math.round(performance.now() - started)
    await running.kill()
    await running.done
    await watching
    const phase = victim.phase()
    const violations: string[] = []
    await victim.check(violations)
    await checkCommon(work, violations)
    return {
      scenario,
      round,
      killAtMs,
      ranMs,
      timing,
      ...(commitMs !== undefined && { commitMs }),
      phase,
      acknowledged: victim.acknowledged(),
      violations,
    }
  } finally {
    keepCredentials.delete(work)
    rmSync(work, { recursive: true, force: true })
  }
}
