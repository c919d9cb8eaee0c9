import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import createError from '@fastify/error'
import {
  AI_BRIDGE_OPTIONS_SCHEMA,
  AI_LIMIT_VALUES_SCHEMA,
  DEVICE_LIMITS_SCHEMA,
  deviceLimitProblems,
  CLUSTER_SCHEMA,
  LIMITS_SCHEMA,
  PROXY_PROTOCOL_SCHEMA,
  TELEMETRY_ROUTES_SCHEMA,
  checkAiBridgeOptions,
  checkLimits,
  checkProxyProtocol,
} from './broker/options.ts'
import { deepFreeze, describeSchemaErrors, KEY_ALGORITHMS, parseAddressRange, schemaValidator, type FromSchema } from './certs/index.ts'
import {
  DEFAULT_CLAIM_REQUEST_RATE,
  DEFAULT_RATE_LIMIT,
  rateLimitSchema,
  SETTINGS_LIMITS_SCHEMA,
  type LimitsPolicy,
} from './provisioning/index.ts'

export const ConfigInvalid = createError('GH_CONFIG_INVALID', '%s', 400)

/**
 * Gatehouse's whole configuration: one JSON Schema with ranges and defaults, from which the Config type
 * is derived (certs/json-schema.ts) and the GATEHOUSE_* environment names are walked (configEnvBindings).
 * Each plane owns its parts with their defaults and ranges: the broker `limits` and `proxyProtocol`
 * (broker/) and `ai` (broker/ai-bridge/), the control plane the request rates and `settingsLimits`
 * (provisioning/); this file embeds them. It is the one file beside gatehouse.ts that imports both planes,
 * for their schemas only.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1, default: './data' },
    host: { type: 'string', minLength: 1, default: '127.0.0.1' },
    mqttPort: { type: 'integer', minimum: 0, maximum: 65_535, default: 8883 },
    /** MQTT over WebSockets with TLS (path /mqtt) on `host`, with client certificates as on mqttPort; off unless set */
    wsPort: { type: 'integer', minimum: 0, maximum: 65_535 },
    /** the app HTTP API: loopback by default; any other address needs HTTPS or httpAllowInsecure */
    httpHost: { type: 'string', minLength: 1, default: '127.0.0.1' },
    httpPort: { type: 'integer', minimum: 0, maximum: 65_535, default: 8080 },
    httpAllowInsecure: { type: 'boolean', default: false },
    /** serve the API over HTTPS on a loopback httpHost too (off loopback it always is), with the broker's server certificate */
    httpTls: { type: 'boolean', default: false },
    /**
     * reverse proxies in front of the API (IP addresses, CIDRs, or 'loopback', 'linklocal', 'uniquelocal'): a
     * request from one of them is taken to come from the address its X-Forwarded-For names (what the dashboard
     * sign-in's per-address limit counts); none by default, so the header is ignored and cannot be forged
     */
    httpTrustProxy: { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 64 }, default: [] },
    /** GET /metrics on its own listener, without an API key (else on the API, for keys with metrics:read) */
    metricsPort: { type: 'integer', minimum: 0, maximum: 65_535 },
    /** the metrics listener's address: loopback unless the operator names another */
    metricsHost: { type: 'string', minLength: 1, default: '127.0.0.1' },
    /** requests per API key (token bucket) */
    httpRateLimit: rateLimitSchema(DEFAULT_RATE_LIMIT),
    hostnames: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 253 }, default: [] },
    logLevel: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    logFormat: { type: 'string', enum: ['auto', 'json', 'pretty'], default: 'auto' },
    keyAlgorithm: { type: 'string', enum: KEY_ALGORITHMS, default: 'p256' },
    certValidDays: { type: 'integer', minimum: 1, maximum: 3650, default: 365 },
    renewOverlapHours: { type: 'number', minimum: 0, maximum: 24 * 365, default: 24 },
    /** the last fraction of a device certificate's validity in which the device may renew it over MQTT */
    renewalWindow: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 / 3 },
    /** claim requests per claim, all its sessions together (token bucket; over it: GH_CLAIM_RATE_LIMITED) */
    claimRequestRate: rateLimitSchema(DEFAULT_CLAIM_REQUEST_RATE),
    defaultTier: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$', default: 'standard' },
    /**
     * The public base URL under which relying parties reach GET /crl/<issuer key id>.crl (http or https; a
     * host, an optional port and path; no user, query or fragment). Set, every certificate issued names its
     * CRL there in a CRL Distribution Points extension; unset (the default), none does.
     */
    crlBaseUrl: {
      type: 'string',
      maxLength: 200,
      pattern: "^https?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$",
    },
    /**
     * how often the change feed reads the registry for events; default 200 ms on SQLite (polling is how it sees
     * another process's commits), 1000 ms on PostgreSQL (LISTEN wakes it at every commit: the poll is a safety net)
     */
    changeFeedIntervalMs: { type: 'integer', minimum: 20, maximum: 5000 },
    /**
     * The registry on PostgreSQL (cluster mode, README "Running a cluster"): postgres://user:password@host:5432/db,
     * best from GATEHOUSE_DATABASE_URL (the --database flag refuses a password); absent = SQLite in the data directory.
     * The CA, its keys and the bundles stay in the data directory either way.
     */
    databaseUrl: { type: 'string', maxLength: 2000, pattern: '^postgres(ql)?://' },
    /**
     * With databaseUrl: the file (mode 0600, at least 32 bytes: `openssl rand -out FILE 32`) holding the cluster's CA
     * sync secret, the same on every node: `ca rotate` seals the new issuing CA's key with it into the database and
     * every node opens it there (docs/device-lifecycle.md, "CA rotation"). A path, not the secret: never logged.
     */
    caSyncSecretFile: { type: 'string', minLength: 1, maxLength: 4096 },
    /**
     * connections to the PostgreSQL registry of one `gatehouse start` (docs/deployment.md): with `--workers N`
     * each worker opens its own pool of this divided by N (at least 2); a CLI call opens this many at most
     */
    databasePoolSize: { type: 'integer', minimum: 2, maximum: 1000, default: 10 },
    /**
     * statement_timeout of the PostgreSQL registry's connections (ms): a statement running longer is cancelled
     * and its caller gets GH_STORE_TIMEOUT (a device's CONNECT: "server unavailable") instead of waiting forever
     */
    databaseStatementTimeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000, default: 15_000 },
    /** broker protection limits (broker/limits.ts); the rules relating two limits are checked by checkLimits() */
    limits: { ...LIMITS_SCHEMA, default: {} },
    /** PROXY protocol v1/v2 on the MQTT listener from these load balancers (docs/deployment.md); off by default */
    proxyProtocol: { ...PROXY_PROTOCOL_SCHEMA, default: {} },
    /** the AI telemetry bridge on or off (on by default, with the local analyzer) */
    aiEnabled: { type: 'boolean', default: true },
    /** the AI telemetry bridge (docs/ai-bridge.md); {} = the local analyzer with safe limits */
    ai: { ...AI_BRIDGE_OPTIONS_SCHEMA, default: {} },
    /** telemetry routes to HTTP endpoints (broker/telemetry-routes/, README "Routes"): their bound and SSRF opt-in */
    routes: { ...TELEMETRY_ROUTES_SCHEMA, default: {} },
    /** app identities for MQTT (`gatehouse app`, README "Apps: telemetry out"): how many, and their certificates' validity */
    apps: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxApps: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000 },
        certValidDays: { type: 'integer', minimum: 1, maximum: 3650, default: 365 },
      },
      default: {},
    },
    /** a node of a cluster on this Redis (broker/cluster.ts, README "Running a cluster"); absent = one process */
    cluster: CLUSTER_SCHEMA,
    /** settings documents and group JSON Schemas (provisioning/settings) */
    settingsLimits: SETTINGS_LIMITS_SCHEMA,
  },
} as const

export type Config = FromSchema<typeof configSchema>

// Built by `npm run build` (certs/prebuilt-validators.ts), else compiled on first use (loadConfig), not when a
// CLI command merely imports this file; without ajv's code optimisation passes, which cost more (~100 ms)
// than the one validation a process makes saves.
const configValidator = schemaValidator<Config>('config', configSchema, {
  allErrors: true,
  useDefaults: true,
  coerceTypes: 'array',
  strict: true,
  code: { optimize: false },
})

export type ConfigInput = Record<string, unknown>

/** A key in SCREAMING_SNAKE_CASE after a prefix: envName('mqttPort') = GATEHOUSE_MQTT_PORT. */
export function envName(key: string, prefix = 'GATEHOUSE_'): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

interface SchemaNode {
  type?: string
  properties?: Record<string, SchemaNode>
  items?: SchemaNode
}

/** How an environment variable's text becomes a value: as is (the schema coerces it), comma-separated, or JSON. */
export interface EnvBinding {
  name: string
  path: string[]
  form: 'text' | 'list' | 'json'
}

/**
 * The GATEHOUSE_* names, walked from the schema: each key's name is its parent's plus the key in
 * SCREAMING_SNAKE_CASE (limits.packetRate.burst: GATEHOUSE_LIMITS_PACKET_RATE_BURST). Objects with
 * properties are walked into; a list of scalars is comma-separated; a map (ai.tiers) or a list of
 * objects, which a walk cannot reach, takes JSON.
 */
export function configEnvBindings(schema: SchemaNode = configSchema, path: string[] = [], prefix = 'GATEHOUSE_'): EnvBinding[] {
  return Object.entries(schema.properties ?? {}).flatMap(([key, node]): EnvBinding[] => {
    const name = envName(key, prefix)
    const at = [...path, key]
    if (node.type === 'object' && node.properties) return configEnvBindings(node, at, `${name}_`)
    if (node.type === 'object' || (node.type === 'array' && node.items?.type === 'object')) return [{ name, path: at, form: 'json' }]
    return [{ name, path: at, form: node.type === 'array' ? 'list' : 'text' }]
  })
}

const ENV_BINDINGS = configEnvBindings()

function envValue(binding: EnvBinding, text: string): unknown {
  if (binding.form === 'list')
    return text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  if (binding.form === 'text') return text
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ConfigInvalid(`${binding.name} is not valid JSON (${(err as Error).message})`)
  }
}

function setPath(target: ConfigInput, [key, ...rest]: string[], value: unknown): void {
  if (key === undefined) return
  if (rest.length === 0) {
    target[key] = value
    return
  }
  const child = target[key]
  const next: ConfigInput = isObject(child) ? child : {}
  target[key] = next
  setPath(next, rest, value)
}

/** The env layer, and which variable set each value (for the error messages). An empty variable is unset. */
function fromEnv(env: NodeJS.ProcessEnv): { layer: ConfigInput; used: EnvBinding[] } {
  const layer: ConfigInput = {}
  const used: EnvBinding[] = []
  for (const binding of ENV_BINDINGS) {
    const text = env[binding.name]
    if (text === undefined || text === '') continue
    setPath(layer, binding.path, envValue(binding, text))
    used.push(binding)
  }
  return { layer, used }
}

function readConfigFile(path: string): ConfigInput {
  if (!existsSync(path)) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigInvalid(`${path} is not valid JSON (${(err as Error).message}): fix or remove it`)
  }
  if (!isObject(parsed)) throw new ConfigInvalid(`${path} must hold a JSON object`)
  if (depthOver(parsed, MAX_CONFIG_DEPTH))
    throw new ConfigInvalid(`${path} is nested deeper than ${MAX_CONFIG_DEPTH} levels, deeper than any configuration key: fix it`)
  return parsed
}

/** Deeper than any key of the schema; checked before the recursive merge, which a deeper file would overflow. */
const MAX_CONFIG_DEPTH = 32

/** Is a parsed JSON value nested deeper than max levels? Without recursion, so any depth is safe to ask about. */
function depthOver(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]]
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [v, depth] = next
    if (typeof v !== 'object' || v === null) continue
    if (depth >= max) return true
    for (const inner of Object.values(v)) stack.push([inner, depth + 1])
  }
  return false
}

function isObject(v: unknown): v is ConfigInput {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Later layers win key by key, at every depth; the layers themselves are not modified. */
function mergeInto(target: ConfigInput, layer: ConfigInput): ConfigInput {
  for (const [k, v] of Object.entries(layer)) {
    if (v === undefined) continue
    const prev = Object.hasOwn(target, k) ? target[k] : undefined
    const value = isObject(v) ? mergeInto(isObject(prev) ? prev : {}, v) : v
    // an own property even for "__proto__" (a JSON file has it as a key): the schema then refuses it as unknown
    Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true })
  }
  return target
}

function valueAt(config: ConfigInput, path: string[]): unknown {
  return path.reduce<unknown>((v, key) => (isObject(v) && Object.hasOwn(v, key) ? v[key] : undefined), config)
}

/** " (from GATEHOUSE_X)" for a problem at or under a value an environment variable set. */
function envLabel(sources: Map<string, string>): (instancePath: string) => string {
  return (instancePath) => {
    for (const [at, name] of sources) if (instancePath === at || instancePath.startsWith(`${at}/`)) return ` (from ${name})`
    return ''
  }
}

/**
 * The rules relating two keys of one plane's options, and what JSON Schema cannot say (address ranges, URLs):
 * the planes' own checks, over what the config's schema has already validated and filled (their schemas are
 * embedded in it), so nothing is validated twice (issue 14).
 */
function planeProblems(config: Config, used: EnvBinding[]): string[] {
  const checks: [string, () => unknown][] = [
    ['limits', () => checkLimits(config.limits)],
    ['proxyProtocol', () => checkProxyProtocol(config.proxyProtocol)],
    ['ai', () => checkAiBridgeOptions(config.ai)],
  ]
  return checks.flatMap(([key, check]) => {
    try {
      check()
      return []
    } catch (err) {
      const names = used.filter((b) => b.path[0] === key).map((b) => b.name)
      return [`${(err as Error).message}${names.length ? ` (environment: ${names.join(', ')})` : ''}`]
    }
  })
}

/** The metrics or WebSocket listener on the address and port of another listener would stop start-up with EADDRINUSE: say so first. */
function listenerProblems(config: Config): string[] {
  const listeners = [
    ['mqttPort', config.host, config.mqttPort],
    ['httpPort', config.httpHost, config.httpPort],
    ['metricsPort', config.metricsHost, config.metricsPort],
    ['wsPort', config.host, config.wsPort],
  ] as const
  const problems: string[] = []
  for (const [name, host, port] of listeners.slice(2)) {
    if (port === undefined || port === 0) continue
    for (const [key, otherHost, p] of listeners) {
      if (key === name || p !== port || otherHost !== host || (key === 'metricsPort' && name === 'wsPort')) continue
      problems.push(
        `${name} ${port} on ${host} is ${key} too: give the ${name === 'wsPort' ? 'WebSocket' : 'metrics'} listener a port of its own`,
      )
    }
  }
  return problems
}

/**
 * The one way to a Config: defaults < <dataDir>/gatehouse.json < GATEHOUSE_* env < flags, merged key by
 * key. Invalid input stops start-up with every problem listed, naming the environment variable a bad
 * value came from; the result is deeply frozen. Only this module and the CLI read the environment and
 * files for configuration (docs/conventions.md §11-12).
 */
export function loadConfig(flags: ConfigInput, env: NodeJS.ProcessEnv): Readonly<Config> {
  const { layer: envLayer, used } = fromEnv(env)
  const dataDir = String(flags.dataDir ?? envLayer.dataDir ?? './data')
  const fileLayer = readConfigFile(join(dataDir, 'gatehouse.json'))
  const config: ConfigInput = {}
  for (const layer of [fileLayer, envLayer, flags, { dataDir }]) mergeInto(config, layer)
  // a flag overrides the variable of the same key: then the variable is not named
  const fromEnvAlone = used.filter((b) => valueAt(flags, b.path) === undefined)
  const sources = new Map(fromEnvAlone.map((b) => [`/${b.path.join('/')}`, b.name]))
  const cluster = config.cluster
  if (isObject(cluster) && cluster.workers !== undefined && cluster.redisUrl === undefined)
    throw new ConfigInvalid(
      'cluster.workers (--workers, GATEHOUSE_CLUSTER_WORKERS) needs cluster.redisUrl (--cluster redis://...): workers share ' +
        'sessions, fan-out and the one-session-per-device rule through Redis; without a cluster run one process (no --workers)',
    )
  const validate = configValidator()
  if (!validate(config)) throw new ConfigInvalid(describeSchemaErrors(validate.errors ?? [], 'config', envLabel(sources)).join('; '))
  const problems = [...planeProblems(config, fromEnvAlone), ...listenerProblems(config), ...trustProxyProblems(config)]
  if (problems.length > 0) throw new ConfigInvalid(problems.join('; '))
  return deepFreeze(config)
}

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal'])
/** httpTrustProxy: each entry an address, a CIDR (parseAddressRange, as proxyProtocol.trustedProxies) or a keyword proxy-addr knows. */
function trustProxyProblems(config: ConfigInput): string[] {
  const list = Array.isArray(config.httpTrustProxy) ? (config.httpTrustProxy as string[]) : []
  return list
    .filter((entry) => !PROXY_KEYWORDS.has(entry) && parseAddressRange(entry) === null)
    .map(
      (entry) =>
        `httpTrustProxy: '${entry}' is not an IP address, a CIDR (10.0.0.0/8, fd00::/8) or one of loopback, linklocal, uniquelocal`,
    )
}

/** Secrets never come from flags (they would show in `ps`): env, or a file named in env. */
export function caPassphrase(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GATEHOUSE_CA_PASSPHRASE_FILE) {
    try {
      return readFileSync(env.GATEHOUSE_CA_PASSPHRASE_FILE, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new ConfigInvalid(`GATEHOUSE_CA_PASSPHRASE_FILE ${env.GATEHOUSE_CA_PASSPHRASE_FILE} cannot be read: ${(err as Error).message}`)
    }
  }
  const v = env.GATEHOUSE_CA_PASSPHRASE
  return v === undefined || v === '' ? undefined : v
}

/**
 * The CA sync secret from caSyncSecretFile (GATEHOUSE_CA_SYNC_SECRET_FILE), when set: the file's bytes, which must be
 * at least 32 and readable by its owner only. Never logged; a problem names the file, never its content.
 */
export function caSyncSecret(config: { caSyncSecretFile?: string | undefined }): Uint8Array | undefined {
  const path = config.caSyncSecretFile
  if (path === undefined) return undefined
  const problem = (what: string) => new ConfigInvalid(`caSyncSecretFile ${path} ${what}`)
  let bytes: Buffer
  try {
    if ((statSync(path).mode & 0o077) !== 0) throw problem('is readable by group or others: run chmod 600 on it')
    bytes = readFileSync(path)
  } catch (err) {
    if ((err as { code?: string }).code === 'GH_CONFIG_INVALID') throw err
    throw problem(`cannot be read: ${(err as Error).message}`)
  }
  if (bytes.length < 32) throw problem(`holds ${bytes.length} bytes, fewer than 32: make it with openssl rand -out FILE 32`)
  return new Uint8Array(bytes)
}

/**
 * The user PIN of the PKCS#11 token holding the CA keys: from `file` (init's and start's
 * --pkcs11-pin-file), else GATEHOUSE_PKCS11_PIN_FILE, else GATEHOUSE_PKCS11_PIN. Never a flag's value.
 */
export function pkcs11Pin(env: NodeJS.ProcessEnv, file?: string): string | undefined {
  const path = file ?? env.GATEHOUSE_PKCS11_PIN_FILE
  if (path) {
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new ConfigInvalid(`the PKCS#11 PIN file ${path} cannot be read: ${(err as Error).message}`)
    }
  }
  const v = env.GATEHOUSE_PKCS11_PIN
  return v === undefined || v === '' ? undefined : v
}

/** The authority's options, from the config. */
/**
 * A tier's or a device's limits document (`gatehouse tier set`, PUT /v1/tiers/{name}): the broker's
 * per-device limits and the AI budgets, each piece the schema its plane owns (docs/conventions.md §6).
 */
export const LIMIT_VALUES_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { broker: DEVICE_LIMITS_SCHEMA, ai: AI_LIMIT_VALUES_SCHEMA },
} as const
const limitValuesValidator = schemaValidator('limit-values', LIMIT_VALUES_SCHEMA, { allErrors: true, strict: true })

/** The tiers there are (the AI bridge's configured tiers and defaultTier) and how a limits document is checked. */
export function limitsPolicy(config: Readonly<Config>): LimitsPolicy {
  // loadConfig checked both (planeProblems): a Config holds them resolved
  const limits = config.limits
  return {
    tiers: [...new Set([config.defaultTier, ...Object.keys(config.ai.tiers)])].sort(),
    schema: LIMIT_VALUES_SCHEMA,
    problems(values) {
      const validateLimitValues = limitValuesValidator()
      if (!validateLimitValues(values)) return describeSchemaErrors(validateLimitValues.errors ?? [], 'limits')
      return deviceLimitProblems(limits, (values as { broker?: object }).broker ?? {}).map((p) => `broker.${p}`)
    },
  }
}

export function authorityOptions(config: Readonly<Config>) {
  return {
    validDays: config.certValidDays,
    keyAlgorithm: config.keyAlgorithm,
    defaultTier: config.defaultTier,
    renewOverlapHours: config.renewOverlapHours,
    ...(config.crlBaseUrl !== undefined && { crlBaseUrl: config.crlBaseUrl }),
    settings: {
      maxBytes: config.settingsLimits.maxLayerBytes,
      maxDepth: config.settingsLimits.maxDepth,
      maxSchemaBytes: config.settingsLimits.maxSchemaBytes,
    },
    limits: limitsPolicy(config),
    routes: { maxRoutes: config.routes.maxRoutes, allowPrivateTargets: config.routes.allowPrivateTargets },
    apps: { maxApps: config.apps.maxApps ?? 1000, validDays: config.apps.certValidDays ?? 365 },
  }
}
