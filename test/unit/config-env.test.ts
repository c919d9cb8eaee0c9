import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { resolveAiBridgeOptions, type AiBridgeOptions } from '../../broker/ai-bridge/options.ts'
import { DEFAULT_LIMITS, LIMITS_SCHEMA, type BrokerLimits } from '../../broker/limits.ts'
import type { ProxyProtocolOptions } from '../../broker/proxy-protocol.ts'
import { configEnvBindings, configSchema, loadConfig, type Config } from '../../config.ts'
import { DEFAULT_RATE_LIMIT } from '../../provisioning/api/rate-limiter.ts'
import { DEFAULT_CLAIM_REQUEST_RATE } from '../../provisioning/enrollment/enrollment-service.ts'
import { DEFAULT_SETTINGS_LIMITS, type SettingsLimitsOptions } from '../../provisioning/settings/settings-limits.ts'
import { tempDir } from '../helpers/temp-dir.ts'

/** GATEHOUSE_* variables read outside the config schema (secrets, CLI-only ones, docs/ai-bridge.md's webhook secret). */
const OTHER_ENV_NAMES = [
  'GATEHOUSE_CA_PASSPHRASE',
  'GATEHOUSE_CA_PASSPHRASE_FILE',
  'GATEHOUSE_SETTINGS_KEY',
  'GATEHOUSE_P12_PASSWORD',
  'GATEHOUSE_WEBHOOK_SECRET',
  'GATEHOUSE_PKCS11_PIN',
  'GATEHOUSE_PKCS11_PIN_FILE',
  // bin/gatehouse.js: run the compiled CLI (dist) or the TypeScript sources (tsx)
  'GATEHOUSE_CLI',
]

const names = () => configEnvBindings().map((b) => b.name)

function configError(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, file?: unknown): string {
  const dataDir = tempDir()
  if (file !== undefined) writeFileSync(join(dataDir, 'gatehouse.json'), JSON.stringify(file))
  try {
    loadConfig({ dataDir, ...flags }, env)
  } catch (err) {
    expect(err).toMatchObject({ code: 'GH_CONFIG_INVALID' })
    return (err as Error).message
  }
  throw new Error('expected GH_CONFIG_INVALID')
}

describe('the config type comes from the schema', () => {
  it('each plane part is the type its plane resolves to', () => {
    expectTypeOf<Config['limits']>().toEqualTypeOf<BrokerLimits>()
    expectTypeOf<Config['proxyProtocol']>().toEqualTypeOf<ProxyProtocolOptions>()
    expectTypeOf<Config['ai']>().toEqualTypeOf<AiBridgeOptions>()
    expectTypeOf<Config['settingsLimits']>().toEqualTypeOf<SettingsLimitsOptions>()
    expectTypeOf<Config['hostnames']>().toEqualTypeOf<string[]>()
    expectTypeOf<Config['logFormat']>().toEqualTypeOf<'auto' | 'json' | 'pretty'>()
  })

  it("the defaults are the planes' own: limits, PROXY protocol, AI options, request rates and settings limits", () => {
    const config = loadConfig({ dataDir: tempDir() }, {})
    expect(config.limits).toEqual(DEFAULT_LIMITS)
    expect(config.proxyProtocol).toEqual({ trustedProxies: [], headerTimeoutMs: 5000 })
    expect(config.ai).toEqual(resolveAiBridgeOptions())
    expect(config.httpRateLimit).toEqual({ ratePerSecond: 20, burst: 40 })
    expect(config.httpRateLimit).toEqual(DEFAULT_RATE_LIMIT)
    expect(config.claimRequestRate).toEqual({ ratePerSecond: 5, burst: 50 })
    expect(config.claimRequestRate).toEqual(DEFAULT_CLAIM_REQUEST_RATE)
    expect(config.settingsLimits).toEqual({ maxLayerBytes: 65_536, maxDepth: 16, maxSchemaBytes: 32_768 })
    expect(config.settingsLimits).toEqual(DEFAULT_SETTINGS_LIMITS)
    expect(Object.isFrozen(config.limits.packetRate)).toBe(true)
  })
})

describe('GATEHOUSE_* names, walked from the schema', () => {
  it('keeps every name that worked before', () => {
    const before = [
      'GATEHOUSE_DATA_DIR',
      'GATEHOUSE_HOST',
      'GATEHOUSE_MQTT_PORT',
      'GATEHOUSE_HTTP_HOST',
      'GATEHOUSE_HTTP_PORT',
      'GATEHOUSE_HTTP_ALLOW_INSECURE',
      'GATEHOUSE_HOSTNAMES',
      'GATEHOUSE_LOG_LEVEL',
      'GATEHOUSE_LOG_FORMAT',
      'GATEHOUSE_KEY_ALGORITHM',
      'GATEHOUSE_CERT_VALID_DAYS',
      'GATEHOUSE_RENEW_OVERLAP_HOURS',
      'GATEHOUSE_RENEWAL_WINDOW',
      'GATEHOUSE_DEFAULT_TIER',
      'GATEHOUSE_CHANGE_FEED_INTERVAL_MS',
      'GATEHOUSE_AI_ENABLED',
      'GATEHOUSE_LIMITS_MAX_CONNECTIONS',
      'GATEHOUSE_LIMITS_MAX_CONNECTIONS_PER_IP',
      'GATEHOUSE_LIMITS_HANDSHAKE_TIMEOUT_MS',
      'GATEHOUSE_LIMITS_CONNECT_TIMEOUT_MS',
      'GATEHOUSE_LIMITS_MAX_PACKET_BYTES',
      'GATEHOUSE_LIMITS_MAX_QUEUED_MESSAGES',
      'GATEHOUSE_LIMITS_MAX_QUEUED_BYTES',
      'GATEHOUSE_LIMITS_MAX_INFLIGHT_INBOUND',
      'GATEHOUSE_LIMITS_AUDIT_INTERVAL_MS',
      'GATEHOUSE_LIMITS_MAX_TRACKED_KEYS',
      'GATEHOUSE_LIMITS_DRAIN_TIMEOUT_MS',
      'GATEHOUSE_LIMITS_CLAIM_SESSION_SECONDS',
      'GATEHOUSE_LIMITS_SESSION_SWEEP_MS',
      'GATEHOUSE_PROXY_PROTOCOL_TRUSTED_PROXIES',
    ]
    expect(names()).toEqual(expect.arrayContaining(before))
  })

  it('reaches nested keys: limits buckets, keepalive bounds, AI options, settings limits, request rates', () => {
    expect(names()).toEqual(
      expect.arrayContaining([
        'GATEHOUSE_LIMITS_PACKET_RATE_BURST',
        'GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MAX',
        'GATEHOUSE_PROXY_PROTOCOL_HEADER_TIMEOUT_MS',
        'GATEHOUSE_AI_QUEUE_MAX_MESSAGES',
        'GATEHOUSE_AI_PROVIDERS_OPENAI_BASE_URL',
        'GATEHOUSE_AI_REDACTION_DEFAULT_FIELDS',
        'GATEHOUSE_AI_TIERS',
        'GATEHOUSE_SETTINGS_LIMITS_MAX_SCHEMA_BYTES',
        'GATEHOUSE_HTTP_RATE_LIMIT_BURST',
        'GATEHOUSE_CLAIM_REQUEST_RATE_RATE_PER_SECOND',
      ]),
    )
  })

  it('never collide, with each other or with the variables read outside the schema', () => {
    const all = [...names(), ...OTHER_ENV_NAMES]
    expect(all.length).toBeGreaterThan(80)
    expect(all.filter((n, i) => all.indexOf(n) !== i)).toEqual([])
  })

  it('the README and docs/ name only variables Gatehouse reads', () => {
    const root = resolve(import.meta.dirname, '../..')
    const docs = [
      'README.md',
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ]
    const known = new Set([...names(), ...OTHER_ENV_NAMES, 'GATEHOUSE_KEY' /* docs/api.md: a shell variable holding an API key */])
    const named = docs.flatMap((f) =>
      [...readFileSync(join(root, f), 'utf8').matchAll(/GATEHOUSE_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => `${f}: ${m[0]}`),
    )
    expect(named.length).toBeGreaterThan(20)
    expect(named.filter((n) => !known.has(n.split(': ')[1] as string))).toEqual([])
  })

  it("the README's Configuration table has a row for every top-level key", () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('Secrets never come from flags'))
    const rows = table.split('\n').filter((l) => l.startsWith('| `'))
    expect(Object.keys(configSchema.properties).filter((key) => !rows.some((r) => r.split('|')[1]?.includes(`\`${key}`)))).toEqual([])
  })

  it('a list of scalars is comma-separated; a map takes JSON', () => {
    const forms = Object.fromEntries(configEnvBindings().map((b) => [b.name, b.form]))
    expect(forms).toMatchObject({
      GATEHOUSE_HOSTNAMES: 'list',
      GATEHOUSE_AI_REDACTION_DEFAULT_FIELDS: 'list',
      GATEHOUSE_AI_TIERS: 'json',
      GATEHOUSE_AI_DEVICES: 'json',
      GATEHOUSE_MQTT_PORT: 'text',
    })
  })
})

describe('nested keys from the environment', () => {
  it('merge with gatehouse.json key by key, coerced by the same schema; a flag still wins', () => {
    const dataDir = tempDir()
    writeFileSync(
      join(dataDir, 'gatehouse.json'),
      JSON.stringify({ limits: { packetRate: { ratePerSecond: 10 }, maxConnections: 50 }, ai: { windowing: { seconds: 5 } } }),
    )
    const env = {
      GATEHOUSE_LIMITS_PACKET_RATE_BURST: '500',
      GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MAX: '600',
      GATEHOUSE_AI_WINDOWING_MESSAGES: '1',
      GATEHOUSE_AI_REDACTION_DEFAULT_FIELDS: 'imei, iccid',
      GATEHOUSE_AI_TIERS: '{"gold": {"limits": {"burst": 7}}}',
      GATEHOUSE_AI_DEFAULT_TIER: 'gold',
      GATEHOUSE_HTTP_RATE_LIMIT_BURST: '80',
      GATEHOUSE_MQTT_PORT: '1883',
    }
    const config = loadConfig({ dataDir, mqttPort: 8884, limits: { maxConnections: 70 } }, env)
    expect(config.limits.packetRate).toEqual({ ratePerSecond: 10, burst: 500 })
    expect(config.limits.keepaliveSeconds).toEqual({ min: 5, max: 600 })
    expect(config.limits.maxConnections).toBe(70)
    expect(config.ai.windowing).toEqual({ messages: 1, seconds: 5 })
    expect(config.ai.redaction.default.fields).toEqual(['imei', 'iccid'])
    expect(config.ai.tiers).toEqual({
      gold: { provider: 'local', limits: { requestsPerMinute: 6, burst: 7, dailyRequests: 5_000, dailyTokens: 250_000 } },
    })
    expect(config.ai.defaultTier).toBe('gold')
    expect(config.httpRateLimit).toEqual({ ratePerSecond: 20, burst: 80 })
    expect(config.mqttPort).toBe(8884)
  })

  it('an empty variable is unset', () => {
    expect(loadConfig({ dataDir: tempDir() }, { GATEHOUSE_LIMITS_PACKET_RATE_BURST: '' }).limits.packetRate).toEqual(
      DEFAULT_LIMITS.packetRate,
    )
  })
})

describe('a bad value names its environment variable', () => {
  it.each([
    [
      'out of range',
      { GATEHOUSE_LIMITS_PACKET_RATE_BURST: '0' },
      'limits.packetRate.burst must be >= 1 (from GATEHOUSE_LIMITS_PACKET_RATE_BURST)',
    ],
    ['not a number', { GATEHOUSE_AI_QUEUE_PER_DEVICE: 'lots' }, 'ai.queue.perDevice must be integer (from GATEHOUSE_AI_QUEUE_PER_DEVICE)'],
    [
      'not in the enum',
      { GATEHOUSE_LOG_FORMAT: 'xml' },
      'logFormat must be equal to one of the allowed values (from GATEHOUSE_LOG_FORMAT)',
    ],
    ['bad JSON', { GATEHOUSE_AI_TIERS: '{gold' }, 'GATEHOUSE_AI_TIERS is not valid JSON'],
    [
      'a bad key inside JSON',
      { GATEHOUSE_AI_TIERS: '{"gold": {"modle": "x"}}' },
      'unknown key "ai.tiers.gold.modle" (from GATEHOUSE_AI_TIERS)',
    ],
    [
      'a bad value inside JSON',
      { GATEHOUSE_AI_TIERS: '{"gold": {"provider": "skynet"}}' },
      'ai.tiers.gold.provider must be equal to one of the allowed values (from GATEHOUSE_AI_TIERS)',
    ],
  ])('%s', (_name, env, expected) => {
    expect(configError({}, env)).toContain(expected)
  })

  it('a rule relating two keys names the variables of that part', () => {
    const message = configError({}, { GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MIN: '60', GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MAX: '30' })
    expect(message).toContain('keepaliveSeconds.max must be >= keepaliveSeconds.min')
    expect(message).toContain('(environment: GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MIN, GATEHOUSE_LIMITS_KEEPALIVE_SECONDS_MAX)')
  })

  it('not when a flag overrode the variable, nor for a value from gatehouse.json', () => {
    expect(configError({ mqttPort: 70_000 }, { GATEHOUSE_MQTT_PORT: '1883' })).toBe('mqttPort must be <= 65535')
    expect(configError({}, {}, { limits: { packetRate: { burst: 0 } } })).toBe('limits.packetRate.burst must be >= 1')
  })

  it('refuses a metrics listener on the address and port of the API or the broker', () => {
    expect(configError({ metricsPort: 8080 }, {})).toBe(
      'metricsPort 8080 on 127.0.0.1 is httpPort too: give the metrics listener a port of its own',
    )
    expect(configError({}, { GATEHOUSE_METRICS_PORT: '8883' })).toContain('is mqttPort too')
    expect(loadConfig({ dataDir: tempDir(), metricsPort: 8080, metricsHost: '10.0.0.5' }, {}).metricsPort).toBe(8080)
  })

  it('takes an http or https crlBaseUrl, and refuses one with a user, a query, a fragment or another scheme', () => {
    for (const url of ['https://pki.example.com/gatehouse/', 'http://10.0.0.5:8080', 'http://[::1]:8080/pki'])
      expect(loadConfig({ dataDir: tempDir() }, { GATEHOUSE_CRL_BASE_URL: url }).crlBaseUrl).toBe(url)
    for (const url of [
      'ftp://pki.example.com',
      'https://user:pw@pki.example.com',
      'https://pki.example.com/?x=1',
      'https://pki.example.com/#a',
      'pki.example.com',
      'https://pki example.com',
    ])
      expect(configError({}, { GATEHOUSE_CRL_BASE_URL: url }), url).toContain('crlBaseUrl must match pattern')
  })

  it("lists every problem at once, across the planes' parts", () => {
    const message = configError({ mqttPort: 70_000 }, { GATEHOUSE_LIMITS_MAX_CONNECTIONS_PER_IP: '0', GATEHOUSE_AI_CONCURRENCY: '0' })
    expect(message).toContain('mqttPort must be <= 65535')
    expect(message).toContain('limits.maxConnectionsPerIp must be >= 1 (from GATEHOUSE_LIMITS_MAX_CONNECTIONS_PER_IP)')
    expect(message).toContain('ai.concurrency must be >= 1 (from GATEHOUSE_AI_CONCURRENCY)')
  })
})

describe('a broker limit is one schema entry', () => {
  // Everything below is walked from LIMITS_SCHEMA: a new entry there gets its type, default, range,
  // gatehouse.json key and GATEHOUSE_LIMITS_* variable with no other edit, and is checked here.
  type Leaf = { path: string[]; schema: { type: string; default: number; minimum?: number; exclusiveMinimum?: number } }
  const leaves = (properties: object, path: string[] = []): Leaf[] =>
    Object.entries(properties).flatMap(([key, s]) =>
      s.type === 'object' ? leaves(s.properties, [...path, key]) : [{ path: [...path, key], schema: s }],
    )
  const all = leaves(LIMITS_SCHEMA.properties)
  const bindings = new Map(configEnvBindings().map((b) => [b.path.join('.'), b.name]))
  const at = (v: unknown, path: string[]) => path.reduce((o, k) => (o as Record<string, unknown>)[k], v)

  it.each(all.map((l) => [l.path.join('.'), l] as const))('%s: a default, a range, a variable', (_name, leaf) => {
    const name = bindings.get(['limits', ...leaf.path].join('.')) as string
    expect(name).toMatch(/^GATEHOUSE_LIMITS_[A-Z_]+$/)
    expect(at(DEFAULT_LIMITS, leaf.path)).toBe(leaf.schema.default)
    expect(at(loadConfig({ dataDir: tempDir() }, { [name]: String(leaf.schema.default) }).limits, leaf.path)).toBe(leaf.schema.default)
    const lowest = leaf.schema.minimum ?? (leaf.schema.exclusiveMinimum as number)
    expect(lowest).toBeTypeOf('number')
    const below = leaf.schema.minimum !== undefined ? lowest - 1 : lowest
    expect(configError({}, { [name]: String(below) })).toContain(`(from ${name})`)
  })
})
