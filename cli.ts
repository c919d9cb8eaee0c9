import { mkdirSync, rmSync } from 'node:fs'
import { userInfo } from 'node:os'
import { Command, CommanderError, Option } from 'commander'
import type { KeyAlgorithm, Random } from './certs/index.ts'
import type { ConfigInput } from './config.ts'
// the sim command's declaration only (its run, with mqtt.js, loads when it runs): not via device-sim/index.ts
import { registerSim, type SimCliDeps } from './device-sim/cli.ts'
import { createLazyLogger, createLogger } from './logger.ts'
import {
  addCommonOptions,
  CliInternal,
  CliUsage,
  namedCommand,
  registerProvisioningCommands,
  type CliDeps,
  type CliIo,
  type CommonOptions,
} from './provisioning/cli/index.ts'

const VERSION = '0.1.0'

function operator(): string {
  try {
    return `operator:${userInfo().username}`
  } catch {
    return 'operator'
  }
}

/** Flags that map onto config keys; the rest are per-command. */
function configFlags(options: Record<string, unknown>): ConfigInput {
  const out: ConfigInput = {}
  for (const key of [
    'dataDir',
    'host',
    'mqttPort',
    'wsPort',
    'httpHost',
    'httpPort',
    'httpAllowInsecure',
    'metricsHost',
    'metricsPort',
    'logLevel',
    'logFormat',
    'keyAlgorithm',
  ])
    if (options[key] !== undefined) out[key] = options[key]
  if (Array.isArray(options.hostname) && options.hostname.length) out.hostnames = options.hostname
  if (typeof options.database === 'string') out.databaseUrl = options.database
  if (typeof options.cluster === 'string' || options.workers !== undefined)
    out.cluster = {
      ...(typeof options.cluster === 'string' && { redisUrl: options.cluster }),
      ...(options.workers !== undefined && { workers: options.workers }),
    }
  return out
}

/**
 * `--json` anywhere before a `--`: the output is JSON, and so is an error (exitCodeFor). Read from argv,
 * not from a command's parsed options, so that a usage error commander finds before any action is JSON too.
 */
export function jsonRequested(argv: readonly string[]): boolean {
  const args = argv.slice(2)
  const end = args.indexOf('--')
  return (end < 0 ? args : args.slice(0, end)).includes('--json')
}

/**
 * The program, with the commands `argv` names registered by their modules and every other one summarised
 * from the command table (provisioning/cli/index.ts): a call loads only what its command needs (issue 14).
 * The configuration, the control plane and the logger load when an action runs. Without argv, every command
 * is registered in full.
 */
export async function buildProgram(io: CliIo, options: { json?: boolean; argv?: readonly string[] } = {}): Promise<Command> {
  const program = new Command('gatehouse')
    .description('Gatehouse: an MQTT broker for IoT devices, with mutual-TLS device identity from its own CA')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // with --json commander's own error text is left out: exitCodeFor writes the error as JSON
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => (options.json ? undefined : io.err(s)) })
    .exitOverride()

  const cliLog = (options: CommonOptions) =>
    createLazyLogger({ level: io.env.GATEHOUSE_LOG_LEVEL ?? 'warn', format: 'auto' }).child({ dataDir: options.dataDir })
  const deps: CliDeps = {
    io,
    actor: operator(),
    random: UNLOADED_RANDOM,
    async openAuthority(options) {
      const [{ authorityOptions, loadConfig }, { openControlPlane }] = await Promise.all([
        import('./config.ts'),
        import('./provisioning/index.ts'),
      ])
      const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
      // the CA's keys are read when a command first signs: most sign nothing (issue 14)
      const control = await openControlPlane(
        config.dataDir,
        { ...authorityOptions(config), lazyCaKeys: true },
        {
          log: cliLog(options),
          ...(await secretsOf(io)),
          ...databaseOf(config),
          databasePool: poolOf(config),
        },
      )
      return {
        authority: control.authority,
        settings: control.settings,
        apiKeys: control.apiKeys,
        claims: control.claims,
        limits: control.limits,
        routes: control.routes,
        apps: control.apps,
        // the broker's sender, loaded only when `route test` runs
        routeTester: async (route, messages) => (await import('./gatehouse.ts')).routeTester(config)(route, messages),
        close: control.close,
      }
    },
    async init(options) {
      const [{ caPassphrase, loadConfig }, { dataDirLayout, initControlPlane }, { identityFromCertificate }] = await Promise.all([
        import('./config.ts'),
        import('./provisioning/index.ts'),
        import('./certs/index.ts'),
      ])
      const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
      const passphrase = caPassphrase(io.env)
      const pkcs11 = await pkcs11Location(options)
      const result = await initControlPlane(
        config.dataDir,
        { keyAlgorithm: config.keyAlgorithm, hostnames: [...config.hostnames], ...(pkcs11 && { pkcs11 }) },
        { log: cliLog(options), ...(await secretsOf(io, options.pkcs11PinFile)), ...databaseOf(config), databasePool: poolOf(config) },
        operator(),
      )
      const root = await identityFromCertificate(result.ca.root.certificate)
      return {
        dataDir: config.dataDir,
        createdCa: result.createdCa,
        serverCertIssued: result.serverCertIssued,
        caChain: dataDirLayout(config.dataDir).chain,
        rootFingerprint: root.fingerprint,
        encrypted: passphrase !== undefined,
        ...(result.pkcs11 && { pkcs11Token: result.pkcs11.token }),
      }
    },
    ca: {
      async rotate(options) {
        const [{ caSyncSecret, loadConfig }, { rotateCa }] = await Promise.all([import('./config.ts'), import('./provisioning/index.ts')])
        // only an explicit --key-algorithm: by default the new CA keeps the current one's key type
        const config = loadConfig(configFlags({ ...options, keyAlgorithm: undefined }), io.env)
        const keyAlgorithm = options.keyAlgorithm as KeyAlgorithm | undefined
        const syncSecret = caSyncSecret(config) // seals the new issuing key for the other nodes of a shared registry
        return rotateCa(
          config.dataDir,
          { ...(keyAlgorithm && { keyAlgorithm }) },
          { log: cliLog(options), ...(await secretsOf(io)), ...databaseOf(config), ...(syncSecret && { caSyncSecret: syncSecret }) },
          operator(),
        )
      },
      async show(options) {
        const [{ loadConfig }, { showCa }] = await Promise.all([import('./config.ts'), import('./provisioning/index.ts')])
        const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
        return showCa(config.dataDir, { log: cliLog(options), ...databaseOf(config) })
      },
    },
    async check(options) {
      const [{ loadConfig }, { checkDataDir }] = await Promise.all([import('./config.ts'), import('./provisioning/index.ts')])
      const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
      return checkDataDir(config.dataDir, options, databaseOf(config))
    },
    async statusTarget(options) {
      const [{ loadConfig }, { healthTarget }] = await Promise.all([import('./config.ts'), import('./provisioning/index.ts')])
      const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
      return {
        target: healthTarget(config),
        dataDir: config.dataDir,
        ...(config.databaseUrl !== undefined && { databaseUrl: config.databaseUrl }),
      }
    },
    async migrateSource(options) {
      const [{ loadConfig }, { dataDirLayout }] = await Promise.all([import('./config.ts'), import('./provisioning/index.ts')])
      const config = loadConfig(configFlags(options as Record<string, unknown>), io.env)
      return { registry: dataDirLayout(config.dataDir).database, databaseUrl: io.env.GATEHOUSE_DATABASE_URL }
    },
  }
  // certs/ (the random source) loads when an action runs: parsing a call and printing help never need it
  program.hook('preAction', async () => {
    deps.random = (await import('./certs/index.ts')).cryptoRandom
  })
  await registerProvisioningCommands(program, deps, options.argv && namedCommand(options.argv))
  registerSim(program, {
    io,
    provision: (ids, options) => provisionSimDevices(deps, ids, options),
    staleBundles: (bundles, options) => staleSimBundles(deps, bundles, options),
  })

  const start = program
    .command('start')
    .description('run Gatehouse: initialise the data directory if needed, then serve MQTT over mutual TLS')
    .option('--host <address>', 'address to listen on (default 127.0.0.1)')
    .option('--mqtt-port <port>', 'MQTT over TLS port; 0 picks a free one (default 8883)')
    .option(
      '--ws-port <port>',
      'also serve MQTT over WebSockets with TLS on this port, path /mqtt, client certificates required (default off)',
    )
    .option('--http-host <address>', 'address of the app HTTP API (default 127.0.0.1; any other address serves HTTPS only)')
    .option('--http-port <port>', 'app HTTP API port; 0 picks a free one (default 8080)')
    .option('--http-allow-insecure', 'serve plain HTTP on a non-loopback --http-host (unsafe: API keys travel in clear)')
    .option('--metrics-port <port>', 'serve /metrics on its own port without an API key (default: on the API, with a metrics:read key)')
    .option('--metrics-host <address>', 'address of the --metrics-port listener (default 127.0.0.1)')
    .option('--pkcs11-pin-file <file>', 'file holding the PIN of the PKCS#11 token with the CA keys (else GATEHOUSE_PKCS11_PIN[_FILE])')
    .option(
      '--cluster <redis-url>',
      'run as a node of a cluster on this Redis (redis://host:port; sessions, fan-out and limits shared; a password is better set in GATEHOUSE_CLUSTER_REDIS_URL)',
    )
    .option(
      '--workers <n>',
      'with --cluster: broker processes on this box, sharing the ports, each a node of the cluster (default: one per core; 1 = this process alone)',
    )
    .option(
      '--database <url>',
      'the registry on PostgreSQL: postgres://user@host:5432/db, no password (that goes in GATEHOUSE_DATABASE_URL, or ~/.pgpass); default SQLite in the data directory',
    )
    .option('--hostname <name>', 'extra DNS name or IP for the broker certificate (repeatable)', (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .addOption(new Option('--log-level <level>').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addOption(new Option('--log-format <format>', 'auto: readable on a terminal, JSON otherwise').choices(['auto', 'json', 'pretty']))
    .option('--json', 'say where Gatehouse listens as one JSON line on stderr (the log stays on stdout)')
  addCommonOptions(start).action(async (options: Record<string, unknown>) => {
    const [{ loadConfig }, { dataDirLayout, initControlPlane }] = await Promise.all([
      import('./config.ts'),
      import('./provisioning/index.ts'),
    ])
    await refusePasswordInArgv(options.database)
    const config = loadConfig(configFlags(options), io.env)
    // loaded only here: provisioning commands never pay for loading the broker
    const gh = await import('./gatehouse.ts')
    const worker = gh.workerId()
    const root = createLogger({ level: config.logLevel, format: config.logFormat, fd: 1 })
    // a worker's every line names it (broker/workers.ts)
    const log = worker === undefined ? root : root.child({ worker })
    const secrets = await secretsOf(io, options.pkcs11PinFile as string | undefined)
    const workers = gh.workerCount(config)
    const chain = dataDirLayout(config.dataDir).chain
    const say = (listening: Listening) => sayListening(io, Boolean(options.json), listening, { dataDir: config.dataDir, chain, workers })
    if (workers > 1 && worker === undefined) {
      // the primary: the data directory is made once, before the workers open it together
      await initControlPlane(
        config.dataDir,
        { keyAlgorithm: config.keyAlgorithm, hostnames: [...config.hostnames] },
        { log, ...secrets, ...databaseOf(config) },
        'gatehouse',
      )
      await gh.superviseWorkers(workers, { log }, { onListening: (listening) => say(listening as Listening) })
      log.info('stopped')
      log.flush()
      return
    }
    const ticketKeys = worker === undefined ? undefined : await gh.receiveTicketKeys()
    const gatehouse = await gh
      .startGatehouse(config, { log, env: io.env, ...secrets, ...(ticketKeys && { ticketKeys }) })
      .catch((err: unknown) => {
        // a worker that cannot start exits (with its error): the IPC channel would keep it alive
        gh.leaveWorkers()
        throw err
      })
    const listening: Listening = {
      mqtt: gatehouse.mqtt,
      http: { url: gatehouse.http.url },
      metrics: gatehouse.metricsHttp ? { url: `${gatehouse.metricsHttp.url}/metrics` } : null,
    }
    if (worker === undefined) say(listening)
    else gh.reportListening(listening)
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down')
        gatehouse.close().then(resolve, (err: unknown) => {
          log.error({ err }, 'shutdown failed')
          resolve()
        })
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
    })
    log.info('stopped')
    log.flush()
    gh.leaveWorkers()
  })
  return program
}

/**
 * `gatehouse sim --provision`: creates devices as `gatehouse device create` does (device-sim/ may not
 * import provisioning/): each bundle <bundlesDir>/<id>/ is written first, the registry committed last.
 */
async function provisionSimDevices(deps: CliDeps, ids: string[], options: Parameters<SimCliDeps['provision']>[1]) {
  const { writeDeviceBundle } = await import('./provisioning/index.ts')
  const opened = await deps.openAuthority({ ...(options.dataDir !== undefined && { dataDir: options.dataDir }) })
  try {
    mkdirSync(options.bundlesDir, { recursive: true, mode: 0o700 })
    const made = []
    for (const id of ids) {
      const prepared = await opened.authority.prepareDevice(
        { id, group: options.group, ...(options.tier && { tier: options.tier }) },
        deps.actor,
      )
      const folder = writeDeviceBundle(options.bundlesDir, prepared.issued, { format: 'pem' })
      try {
        await prepared.commit()
      } catch (err) {
        rmSync(folder, { recursive: true, force: true })
        throw err
      }
      made.push({
        deviceId: id,
        cert: prepared.issued.certificatePem,
        key: prepared.issued.privateKey?.pem ?? '',
        ca: prepared.issued.chainPem,
      })
    }
    return made
  } finally {
    await opened.close()
  }
}

/**
 * `gatehouse sim --provision` reuses bundle folders only when their certificate is the device's current
 * one in this registry: a certificate from another CA (a fresh init, another --data-dir) has a serial
 * the registry never issued, and would fail TLS with "unable to get local issuer certificate".
 */
async function staleSimBundles(deps: CliDeps, bundles: { deviceId: string; cert: string }[], options: { dataDir?: string }) {
  const { identityFromCertificate, parseCertificatePem } = await import('./certs/index.ts')
  const opened = await deps.openAuthority({ ...(options.dataDir !== undefined && { dataDir: options.dataDir }) })
  try {
    const stale: { deviceId: string; why: string }[] = []
    for (const b of bundles) {
      let serial: string
      try {
        serial = (await identityFromCertificate(parseCertificatePem(b.cert))).serial
      } catch {
        stale.push({ deviceId: b.deviceId, why: 'its cert.pem is unreadable' })
        continue
      }
      const cert = (await opened.authority.listCertificates(b.deviceId)).find((c) => c.serial === serial)
      if (!cert) stale.push({ deviceId: b.deviceId, why: 'its certificate was not issued by this data directory (another CA)' })
      else if (cert.status !== 'active') stale.push({ deviceId: b.deviceId, why: `its certificate is ${cert.status}` })
      else if ((await opened.authority.getDevice(b.deviceId)).device.status !== 'active')
        stale.push({ deviceId: b.deviceId, why: `the device is ${(await opened.authority.getDevice(b.deviceId)).device.status}` })
    }
    return stale
  } finally {
    await opened.close()
  }
}

/** The registry's database URL of the config (with its password, from GATEHOUSE_DATABASE_URL or the config file), if any. */
function databaseOf(config: { databaseUrl?: string | undefined }): { databaseUrl?: string } {
  return config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }
}

/** A CLI call's pool of the PostgreSQL registry: at most databasePoolSize connections, statements bounded as a node's. */
function poolOf(config: { databasePoolSize: number; databaseStatementTimeoutMs: number }) {
  return { poolSize: config.databasePoolSize, statementTimeoutMs: config.databaseStatementTimeoutMs }
}

/** `start --database`: a password in argv is readable by anyone on the machine (ps), so it is refused, as `migrate --to` does. */
async function refusePasswordInArgv(url: unknown): Promise<void> {
  if (typeof url !== 'string') return
  let password = ''
  try {
    password = new URL(url).password
  } catch {
    return // not a URL: the config's schema says what is wrong with it
  }
  if (password === '') return
  const { ConfigInvalid } = await import('./config.ts')
  throw new ConfigInvalid(
    '--database holds a password, which anyone on this machine can read in ps: set the whole URL in GATEHOUSE_DATABASE_URL instead, or give --database without the password and put the password in ~/.pgpass (PGPASSFILE)',
  )
}

/** Secrets come from the environment (or files it or a flag names), never from flags that show in `ps`. */
async function secretsOf(io: CliIo, pinFile?: string): Promise<{ passphrase?: string; pkcs11Pin?: string; settingsKey?: string }> {
  const { caPassphrase, pkcs11Pin } = await import('./config.ts')
  const passphrase = caPassphrase(io.env)
  const pin = pkcs11Pin(io.env, pinFile)
  const settingsKey = io.env.GATEHOUSE_SETTINGS_KEY
  return {
    ...(passphrase !== undefined && { passphrase }),
    ...(pin !== undefined && { pkcs11Pin: pin }),
    ...(settingsKey && { settingsKey }),
  }
}

/** init's --pkcs11-module and --pkcs11-token: both or neither. */
async function pkcs11Location(options: {
  pkcs11Module?: string
  pkcs11Token?: string
}): Promise<{ module: string; token: string } | undefined> {
  const { pkcs11Module: module, pkcs11Token: token } = options
  if (module === undefined && token === undefined) return undefined
  const { ConfigInvalid } = await import('./config.ts')
  if (!module || !token)
    throw new ConfigInvalid('--pkcs11-module and --pkcs11-token go together: give the library path and the token label')
  return { module, token }
}

const UNLOADED_RANDOM: Random = {
  bytes() {
    throw new Error('the random source is set before an action runs (preAction)')
  },
}

/** Coded errors that exit 2: a configuration error, and `gatehouse status` finding nothing running. */
const EXIT_2_CODES = new Set(['GH_CONFIG_INVALID', 'GH_STATUS_NOT_RUNNING'])

interface Listening {
  mqtt: { host: string; port: number; ws: { host: string; port: number } | null }
  http: { url: string }
  metrics: { url: string } | null
}

/** Where `gatehouse start` listens, on stderr: one line of text, or of JSON with --json. */
function sayListening(io: CliIo, json: boolean, l: Listening, at: { dataDir: string; chain: string; workers: number }): void {
  const workers = at.workers > 1 ? at.workers : undefined
  if (json)
    io.err(
      `${JSON.stringify({ mqtt: l.mqtt, http: l.http, metrics: l.metrics, dataDir: at.dataDir, trustChain: at.chain, ...(workers && { workers }) })}\n`,
    )
  else
    io.err(
      `gatehouse: MQTT over mutual TLS on ${l.mqtt.host}:${l.mqtt.port}; ` +
        (l.mqtt.ws ? `MQTT over WebSockets on wss://${l.mqtt.ws.host}:${l.mqtt.ws.port}/mqtt; ` : '') +
        `HTTP API on ${l.http.url}; ` +
        (l.metrics ? `metrics on ${l.metrics.url}; ` : '') +
        (workers ? `${workers} workers; ` : '') +
        `data in ${at.dataDir}; trust chain ${at.chain}\n`,
    )
}

/**
 * The one error edge of the CLI (docs/conventions.md §9). Exit codes: 0 ok, 1 the operation failed (a
 * coded error), 2 usage or configuration error (or see EXIT_2_CODES). As text: `error GH_...: message`;
 * with `--json`: one line `{"code": "GH_...", "message": "..."}` on stderr, with the same exit code.
 */
export function exitCodeFor(err: unknown, io: CliIo, json = false): number {
  const e = err as { code?: string; message?: string }
  if (err instanceof CommanderError) {
    if (err.exitCode === 0) return 0
    // commander printed it already as text; as JSON it is said here
    if (json) printError(io, new CliUsage(err.message.replace(/^error: /, '')))
    return 2
  }
  if (e?.code === 'commander.invalidArgument') {
    if (json) printError(io, new CliUsage(e.message ?? ''))
    else io.err(`error: ${e.message}\n`)
    return 2
  }
  if (typeof e?.code === 'string' && e.code.startsWith('GH_')) {
    if (json) printError(io, { code: e.code, message: e.message ?? '' })
    else io.err(`error ${e.code}: ${e.message}\n`)
    return EXIT_2_CODES.has(e.code) ? 2 : 1
  }
  if (json) printError(io, new CliInternal(e?.message ?? String(err)))
  else
    io.err(
      `error: internal error: ${e?.message ?? String(err)}\n(set GATEHOUSE_LOG_LEVEL=debug for details, and report it if it persists)\n`,
    )
  if (io.env.GATEHOUSE_LOG_LEVEL === 'debug') io.err(`${(err as Error)?.stack ?? ''}\n`)
  return 1
}

function printError(io: CliIo, err: { code: string; message: string }): void {
  io.err(`${JSON.stringify({ code: err.code, message: err.message })}\n`)
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const json = jsonRequested(argv)
  let program: Command
  try {
    program = await buildProgram(io, { json, argv })
  } catch (err) {
    return exitCodeFor(err, io, json)
  }
  try {
    await program.parseAsync(argv)
    return 0
  } catch (err) {
    return exitCodeFor(err, io, json)
  }
}

function processIo(): CliIo {
  return {
    out: writerTo(process.stdout),
    err: writerTo(process.stderr),
    isTty: Boolean(process.stderr.isTTY),
    env: process.env,
  }
}

/**
 * Writes to a stream until its reader goes away (`gatehouse device list | head -1`: EPIPE), then drops the rest:
 * the command runs to its end as it would have, and exits as it would have, with no error and no stack, as
 * `git log | head` does (issue 14). Any other error of the stream is thrown, as before.
 */
function writerTo(stream: NodeJS.WriteStream): (text: string) => void {
  let open = true
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    open = false
  })
  return (text) => {
    if (open) stream.write(text)
  }
}
