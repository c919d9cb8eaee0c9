import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ErrorObject, type JSONSchemaType } from 'ajv'
import createError from '@fastify/error'
import { resolveAiBridgeOptions, resolveLimits, resolveProxyProtocol, type BrokerLimitsInput, type ProxyProtocolInput } from './broker/index.ts'
import { KEY_ALGORITHMS, type KeyAlgorithm } from './certs/index.ts'

export const ConfigInvalid = createError('GH_CONFIG_INVALID', '%s', 400)

/**
 * Gatehouse's whole configuration. The schema below is typed against this interface (ajv's
 * JSONSchemaType), so the compiler keeps the two in step: one source for what is valid.
 */
export interface Config {
  dataDir: string
  host: string
  mqttPort: number
  /** the app HTTP API: loopback by default; any other address needs HTTPS or httpAllowInsecure */
  httpHost: string
  httpPort: number
  httpAllowInsecure: boolean
  /** requests per API key (token bucket) */
  httpRateLimit: { ratePerSecond: number; burst: number }
  hostnames: string[]
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  logFormat: 'auto' | 'json' | 'pretty'
  keyAlgorithm: KeyAlgorithm
  certValidDays: number
  renewOverlapHours: number
  /** the last fraction of a device certificate's validity in which the device may renew it over MQTT */
  renewalWindow: number
  /** claim requests per claim, all its sessions together (token bucket; over it: GH_CLAIM_RATE_LIMITED) */
  claimRequestRate: { ratePerSecond: number; burst: number }
  defaultTier: string
  changeFeedIntervalMs: number
  /** broker protection limits; anything left out takes the broker's default (broker/limits.ts) */
  limits: BrokerLimitsInput
  /** PROXY protocol v1/v2 on the MQTT listener from these load balancers (docs/deployment.md); off by default */
  proxyProtocol: ProxyProtocolInput
  /** the AI telemetry bridge on or off (on by default, with the local analyzer) */
  aiEnabled: boolean
  /** the AI telemetry bridge (docs/ai-bridge.md); {} = the local analyzer with safe limits */
  ai: Record<string, unknown>
  /** settings documents and group JSON Schemas (provisioning/settings) */
  settingsLimits: { maxLayerBytes: number; maxDepth: number; maxSchemaBytes: number }
}

const bucketSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ratePerSecond: { type: 'number' }, burst: { type: 'number' } },
} as const

/** A token bucket option of the control plane (API keys, claims), with its range and default. */
function tokenBucketSchema(defaults: { ratePerSecond: number; burst: number }) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: { ratePerSecond: { type: 'number', exclusiveMinimum: 0 }, burst: { type: 'integer', minimum: 1 } },
    required: ['ratePerSecond', 'burst'],
    default: defaults,
  } as const
}

// Types and key names here; ranges and defaults live once, in the broker's resolveLimits().
const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxConnections: { type: 'integer' },
    maxConnectionsPerIp: { type: 'integer' },
    connectionRatePerIp: bucketSchema,
    connectRatePerClientId: bucketSchema,
    handshakeTimeoutMs: { type: 'integer' },
    connectTimeoutMs: { type: 'integer' },
    maxPacketBytes: { type: 'integer' },
    keepaliveSeconds: { type: 'object', additionalProperties: false, properties: { min: { type: 'integer' }, max: { type: 'integer' } } },
    packetRate: bucketSchema,
    maxQueuedMessages: { type: 'integer' },
    maxQueuedBytes: { type: 'integer' },
    maxInflightInbound: { type: 'integer' },
    publishRate: bucketSchema,
    publishBytesRate: bucketSchema,
    auditIntervalMs: { type: 'integer' },
    maxTrackedKeys: { type: 'integer' },
    drainTimeoutMs: { type: 'integer' },
    claimSessionSeconds: { type: 'integer' },
    sessionSweepMs: { type: 'integer' },
  },
} as const

export const configSchema: JSONSchemaType<Config> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1, default: './data' },
    host: { type: 'string', minLength: 1, default: '127.0.0.1' },
    mqttPort: { type: 'integer', minimum: 0, maximum: 65_535, default: 8883 },
    httpHost: { type: 'string', minLength: 1, default: '127.0.0.1' },
    httpPort: { type: 'integer', minimum: 0, maximum: 65_535, default: 8080 },
    httpAllowInsecure: { type: 'boolean', default: false },
    httpRateLimit: tokenBucketSchema({ ratePerSecond: 20, burst: 40 }),
    hostnames: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 253 }, default: [] },
    logLevel: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    logFormat: { type: 'string', enum: ['auto', 'json', 'pretty'], default: 'auto' },
    keyAlgorithm: { type: 'string', enum: [...KEY_ALGORITHMS], default: 'p256' },
    certValidDays: { type: 'integer', minimum: 1, maximum: 3650, default: 365 },
    renewOverlapHours: { type: 'number', minimum: 0, maximum: 24 * 365, default: 24 },
    renewalWindow: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 / 3 },
    claimRequestRate: tokenBucketSchema({ ratePerSecond: 5, burst: 50 }),
    defaultTier: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$', default: 'standard' },
    changeFeedIntervalMs: { type: 'integer', minimum: 20, maximum: 5000, default: 200 },
    limits: { ...limitsSchema, default: {} },
    // ranges checked by the broker's resolveProxyProtocol() below
    proxyProtocol: {
      type: 'object',
      additionalProperties: false,
      properties: {
        trustedProxies: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 64 }, maxItems: 256 },
        headerTimeoutMs: { type: 'integer' },
      },
      default: {},
    },
    // validated in full by the bridge's own schema (resolveAiBridgeOptions) below
    aiEnabled: { type: 'boolean', default: true },
    ai: { type: 'object', default: {} },
    settingsLimits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxLayerBytes: { type: 'integer', minimum: 1024, maximum: 1024 * 1024, default: 64 * 1024 },
        maxDepth: { type: 'integer', minimum: 2, maximum: 64, default: 16 },
        maxSchemaBytes: { type: 'integer', minimum: 1024, maximum: 256 * 1024, default: 32 * 1024 },
      },
      required: ['maxLayerBytes', 'maxDepth', 'maxSchemaBytes'],
      default: {},
    },
  },
  required: [],
} as unknown as JSONSchemaType<Config>

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: 'array', strict: true })
const validate = ajv.compile(configSchema)

export type ConfigInput = Record<string, unknown>

/**
 * Env names: GATEHOUSE_ + the key in SCREAMING_SNAKE_CASE (GATEHOUSE_MQTT_PORT); limits: GATEHOUSE_LIMITS_<KEY>;
 * GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES: comma-separated addresses / CIDR ranges.
 */
export function envName(key: string, prefix = 'GATEHOUSE_'): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()
}

function fromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  const out: ConfigInput = {}
  const limits: ConfigInput = {}
  for (const key of Object.keys(configSchema.properties ?? {})) {
    if (key === 'limits' || key === 'proxyProtocol') continue
    const v = env[envName(key)]
    if (v !== undefined && v !== '') out[key] = key === 'hostnames' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v
  }
  for (const [key, schema] of Object.entries(limitsSchema.properties)) {
    if (schema.type !== 'integer') continue // nested limits are set in gatehouse.json
    const v = env[envName(key, 'GATEHOUSE_LIMITS_')]
    if (v !== undefined && v !== '') limits[key] = v
  }
  if (Object.keys(limits).length) out.limits = limits
  const trustedProxies = env.GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES
  if (trustedProxies) out.proxyProtocol = { trustedProxies: trustedProxies.split(',').map((s) => s.trim()).filter(Boolean) }
  return out
}

function readConfigFile(path: string): ConfigInput {
  if (!existsSync(path)) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigInvalid(`${path} is not valid JSON (${(err as Error).message}): fix or remove it`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigInvalid(`${path} must hold a JSON object`)
  }
  return parsed as ConfigInput
}

function merge(...layers: ConfigInput[]): ConfigInput {
  const out: ConfigInput = {}
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue
      const value = k === 'limits' && typeof v === 'object' && v !== null ? { ...(out.limits as object), ...(v as object) } : v
      // an own property even for "__proto__" (a JSON file has it as a key): the schema then refuses it as unknown
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true })
    }
  }
  return out
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

function describeErrors(): string {
  return (validate.errors ?? [])
    .map((e: ErrorObject) => {
      const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || 'config'
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperty: string }).additionalProperty
        return `unknown key "${where === 'config' ? '' : `${where}.`}${extra}"`
      }
      return `${where} ${e.message ?? 'is invalid'}`
    })
    .join('; ')
}

/**
 * The one way to a Config: defaults < <dataDir>/gatehouse.json < GATEHOUSE_* env < flags. Invalid input
 * stops start-up with every problem listed; the result is deeply frozen. Only this module and the CLI
 * read the environment and files for configuration (docs/conventions.md §11-12).
 */
export function loadConfig(flags: ConfigInput, env: NodeJS.ProcessEnv): Readonly<Config> {
  const envLayer = fromEnv(env)
  const dataDir = String(flags.dataDir ?? envLayer.dataDir ?? './data')
  const fileLayer = readConfigFile(join(dataDir, 'gatehouse.json'))
  const merged = merge(fileLayer, envLayer, flags, { dataDir })
  if (!validate(merged)) throw new ConfigInvalid(describeErrors())
  const config = merged as unknown as Config
  try {
    resolveLimits(config.limits)
    resolveProxyProtocol(config.proxyProtocol)
    resolveAiBridgeOptions(config.ai)
  } catch (err) {
    throw new ConfigInvalid((err as Error).message, { cause: err })
  }
  return deepFreeze(config)
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

/** The authority's options, from the config. */
export function authorityOptions(config: Readonly<Config>) {
  return {
    validDays: config.certValidDays,
    keyAlgorithm: config.keyAlgorithm,
    defaultTier: config.defaultTier,
    renewOverlapHours: config.renewOverlapHours,
    settings: { maxBytes: config.settingsLimits.maxLayerBytes, maxDepth: config.settingsLimits.maxDepth, maxSchemaBytes: config.settingsLimits.maxSchemaBytes },
  }
}
