import { deepFreeze, DEVICE_ID_PATTERN_SOURCE, type FromSchema } from '../../certs/index.ts'
import { AiOptionsInvalid } from '../errors.ts'
import { optionsValidator } from '../option-schemas.ts'

/**
 * The AI bridge's options: one JSON schema (types, ranges, defaults; `additionalProperties: false`
 * everywhere) from which the TypeScript types below are derived. Zero configuration means the local
 * provider (no network) and safe limits. config.ts embeds AI_BRIDGE_OPTIONS_SCHEMA under its `ai` key;
 * checkAiBridgeOptions() (in resolveAiBridgeOptions()) adds the rules that relate two keys. Both report every problem at once.
 */

export const PROVIDER_NAMES = ['local', 'openai', 'webhook'] as const
export type ProviderName = (typeof PROVIDER_NAMES)[number]

export const DEFAULT_TEMPLATE = [
  'You watch over the IoT device {{device.id}} (group {{device.group}}, tier {{device.tier}}).',
  'Here are its latest {{count}} telemetry samples (JSON, personal data removed):',
  '{{telemetry}}',
  'Reply with JSON only: {"summary": "<one or two sentences>", "anomalies": ["<one line each>"]}.',
].join('\n')

function int(minimum: number, maximum: number): { readonly type: 'integer'; readonly minimum: number; readonly maximum: number }
function int(
  minimum: number,
  maximum: number,
  dflt: number,
): { readonly type: 'integer'; readonly minimum: number; readonly maximum: number; readonly default: number }
function int(minimum: number, maximum: number, dflt?: number) {
  return { type: 'integer', minimum, maximum, ...(dflt !== undefined && { default: dflt }) }
}
function num(minimum: number, maximum: number): { readonly type: 'number'; readonly minimum: number; readonly maximum: number }
function num(
  minimum: number,
  maximum: number,
  dflt: number,
): { readonly type: 'number'; readonly minimum: number; readonly maximum: number; readonly default: number }
function num(minimum: number, maximum: number, dflt?: number) {
  return { type: 'number', minimum, maximum, ...(dflt !== undefined && { default: dflt }) }
}
const str = { type: 'string', minLength: 1, maxLength: 256 } as const
const envName = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' } as const
const TIER_PATTERN = '^[a-z][a-z0-9_-]{0,31}$'

const limitProps = {
  /** token bucket refill: provider requests per minute */
  requestsPerMinute: num(0.001, 1_000_000),
  /** token bucket size: requests allowed at once after a quiet spell */
  burst: int(1, 1_000_000),
  /** provider requests per UTC day */
  dailyRequests: int(0, 1_000_000_000),
  /** AI tokens (prompt + completion) per UTC day; a request may overshoot it once, since its size is known only afterwards */
  dailyTokens: int(0, 1_000_000_000_000),
} as const
/** The AI budgets a tier or a device sets in the registry (each optional, ranges as in the options). */
export const AI_LIMIT_VALUES_SCHEMA = { type: 'object', additionalProperties: false, properties: limitProps } as const
export type AiLimitValues = FromSchema<typeof AI_LIMIT_VALUES_SCHEMA>
const limitsSchema = (d: { [K in keyof typeof limitProps]: number }) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: {
      requestsPerMinute: { ...limitProps.requestsPerMinute, default: d.requestsPerMinute },
      burst: { ...limitProps.burst, default: d.burst },
      dailyRequests: { ...limitProps.dailyRequests, default: d.dailyRequests },
      dailyTokens: { ...limitProps.dailyTokens, default: d.dailyTokens },
    },
    default: {},
  }) as const

export const STANDARD_LIMITS = Object.freeze({ requestsPerMinute: 6, burst: 3, dailyRequests: 5_000, dailyTokens: 250_000 })
export const PREMIUM_LIMITS = Object.freeze({ requestsPerMinute: 60, burst: 10, dailyRequests: 50_000, dailyTokens: 2_500_000 })
/**
 * Matched by normalised substring (lower case, separators dropped); names of 4 characters or fewer as
 * a whole word of the key (redact.ts keyMatches). Secrets first, then personal data.
 */
export const DEFAULT_REDACTED_FIELDS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'passphrase',
  'pass',
  'pwd',
  'simPin',
  'pinCode',
  'puk',
  'secret',
  'token',
  'apiKey',
  'accessKey',
  'privateKey',
  'credential',
  'authorization',
  'auth',
  'cookie',
  'session',
  'email',
  'mail',
  'phone',
  'mobile',
  'msisdn',
  'tel',
  'fax',
  'owner',
  'name',
  'firstName',
  'lastName',
  'surname',
  'fullName',
  'username',
  'address',
  'street',
  'postcode',
  'zip',
  'birth',
  'dob',
  'ssn',
  'passport',
  'iban',
  'cardNumber',
  'creditCard',
  'cvv',
  'cvc',
])

const tierSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    provider: { type: 'string', enum: PROVIDER_NAMES, default: 'local' },
    /** default: the provider's model */
    model: str,
    limits: limitsSchema(STANDARD_LIMITS),
  },
} as const

const redactionRuleProps = {
  /**
   * keys removed with their value wherever they occur: a key containing one of these, compared in lower
   * case without separators (apiKey removes x-api-key and API_KEY; password removes wifi_password); a
   * name of 4 characters or fewer must be a whole word of the key (pass: db_pass and dbPass, not bypass)
   */
  fields: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 128 }, maxItems: 256 },
  /** decimals kept of lat/latitude/lon/lng/long/longitude */
  coordinatePrecision: int(0, 10),
} as const

/** The options' JSON schema with ranges and defaults (ajv, strict mode). */
export const AI_BRIDGE_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** telemetry messages waiting in total, and per device (round-robin across devices); perDevice <= maxMessages */
    queue: {
      type: 'object',
      additionalProperties: false,
      properties: { maxMessages: int(1, 10_000_000, 10_000), perDevice: int(1, 1_000_000, 100) },
      default: {},
    },
    /** devices processed at once (one message at a time per device) */
    concurrency: int(1, 1024, 8),
    /** larger telemetry payloads are counted and skipped */
    maxTelemetryBytes: int(2, 16 * 1024 * 1024, 16 * 1024),
    /** the tier used for a device whose tier has no entry in `tiers` */
    defaultTier: { type: 'string', pattern: TIER_PATTERN, default: 'standard' },
    tiers: {
      type: 'object',
      propertyNames: { type: 'string', pattern: TIER_PATTERN },
      additionalProperties: tierSchema,
      default: {
        standard: { provider: 'local', limits: { ...STANDARD_LIMITS } },
        premium: { provider: 'local', limits: { ...PREMIUM_LIMITS } },
      },
    },
    /** per-device overrides (by device id) of the tier's route and limits */
    devices: {
      type: 'object',
      propertyNames: { type: 'string', pattern: DEVICE_ID_PATTERN_SOURCE },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          provider: { type: 'string', enum: PROVIDER_NAMES },
          model: str,
          limits: AI_LIMIT_VALUES_SCHEMA,
        },
      },
      default: {},
    },
    providers: {
      type: 'object',
      additionalProperties: false,
      properties: {
        local: {
          type: 'object',
          additionalProperties: false,
          properties: {
            model: { ...str, default: 'gatehouse-local-stats' },
            /** samples of a metric before z-scores are judged */
            minSamples: int(2, 1_000_000, 10),
            /** |z| above this is an anomaly */
            zThreshold: num(0.1, 100, 3),
            /** samples per metric kept for the trend (least-squares slope) */
            trendWindow: int(2, 10_000, 20),
            /** numeric fields tracked per device; more are ignored */
            maxMetrics: int(1, 10_000, 64),
          },
          default: {},
        },
        openai: {
          type: 'object',
          additionalProperties: false,
          required: ['baseUrl', 'model'],
          properties: {
            /** e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama), a LiteLLM or vLLM server */
            baseUrl: { type: 'string', minLength: 1, maxLength: 2048 },
            model: str,
            /** NAME of the environment variable that holds the key; none for servers without auth */
            apiKeyEnv: envName,
            timeoutMs: int(1, 600_000, 30_000),
            maxResponseBytes: int(1024, 64 * 1024 * 1024, 1024 * 1024),
          },
        },
        webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'secretEnv'],
          properties: {
            url: { type: 'string', minLength: 1, maxLength: 2048 },
            /** NAME of the environment variable that holds the HMAC-SHA256 secret */
            secretEnv: envName,
            model: { ...str, default: 'webhook' },
            timeoutMs: int(1, 600_000, 10_000),
            maxResponseBytes: int(1024, 64 * 1024 * 1024, 1024 * 1024),
          },
        },
      },
      default: {},
    },
    /** `groups` entries add fields to the default list and may change the precision */
    redaction: {
      type: 'object',
      additionalProperties: false,
      properties: {
        default: {
          type: 'object',
          additionalProperties: false,
          properties: {
            fields: { ...redactionRuleProps.fields, default: [...DEFAULT_REDACTED_FIELDS] },
            coordinatePrecision: { ...redactionRuleProps.coordinatePrecision, default: 2 },
          },
          default: {},
        },
        groups: {
          type: 'object',
          additionalProperties: { type: 'object', additionalProperties: false, properties: redactionRuleProps },
          default: {},
        },
      },
      default: {},
    },
    /** one provider request per N messages or T seconds of a device's telemetry, whichever comes first */
    windowing: {
      type: 'object',
      additionalProperties: false,
      properties: { messages: int(1, 10_000, 10), seconds: num(0, 86_400, 10) },
      default: {},
    },
    /** {{path}} substitution; see docs/ai-bridge.md for the variables */
    templates: {
      type: 'object',
      additionalProperties: false,
      properties: {
        default: { type: 'string', minLength: 1, maxLength: 65_536, default: DEFAULT_TEMPLATE },
        groups: { type: 'object', additionalProperties: { type: 'string', minLength: 1, maxLength: 65_536 }, default: {} },
      },
      default: {},
    },
    /** on 429, 5xx, timeouts and network errors; exponential back-off with jitter, Retry-After honoured; max: retries after the first attempt (0: none) */
    retries: {
      type: 'object',
      additionalProperties: false,
      properties: { max: int(0, 20, 3), baseDelayMs: int(0, 3_600_000, 500), maxDelayMs: int(0, 3_600_000, 30_000) },
      default: {},
    },
    /** per provider: open after `failures` consecutive failed calls, try again after `cooldownMs` */
    circuitBreaker: {
      type: 'object',
      additionalProperties: false,
      properties: { failures: int(1, 1_000_000, 5), cooldownMs: int(0, 86_400_000, 30_000) },
      default: {},
    },
    /** repeated warnings (queue full, provider failing) are logged at most once per interval */
    logIntervalMs: int(0, 86_400_000, 60_000),
    /** memory bound for per-device buckets, windows, statistics and throttle episodes */
    maxTrackedDevices: int(1, 100_000_000, 100_000),
    /** daily budgets are kept in memory and settled with the registry this often (and on shutdown): what a crash can lose */
    usageFlushSeconds: num(0.01, 3600, 5),
  },
} as const

/** The options after defaults: every type below comes from the schema above. */
export type AiBridgeOptions = FromSchema<typeof AI_BRIDGE_OPTIONS_SCHEMA>
/** What callers pass: anything left out takes its default; a configured provider names its essentials. */
export type AiBridgeOptionsInput = FromSchema<typeof AI_BRIDGE_OPTIONS_SCHEMA, 'input'>
export type AiTierRoute = AiBridgeOptions['tiers'][string]
export type AiLimits = AiTierRoute['limits']
export type AiDeviceOverride = AiBridgeOptions['devices'][string]
export type LocalProviderOptions = AiBridgeOptions['providers']['local']
export type OpenAiProviderOptions = NonNullable<AiBridgeOptions['providers']['openai']>
export type WebhookProviderOptions = NonNullable<AiBridgeOptions['providers']['webhook']>
export type RedactionRule = AiBridgeOptions['redaction']['default']
export type RetryOptionsShape = AiBridgeOptions['retries']

const validate = optionsValidator<AiBridgeOptions>(AI_BRIDGE_OPTIONS_SCHEMA, 'options', (problems) => new AiOptionsInvalid(problems))

function httpUrlProblem(name: string, value: string): string | null {
  try {
    const u = new URL(value)
    return u.protocol === 'http:' || u.protocol === 'https:' ? null : `${name} must be an http(s) URL`
  } catch {
    return `${name} must be an http(s) URL`
  }
}

/**
 * Defaults < input. Throws GH_AI_OPTIONS_INVALID listing every problem; the result is deeply frozen.
 * The input is not modified.
 */
export function resolveAiBridgeOptions(input: AiBridgeOptionsInput | Record<string, unknown> = {}): Readonly<AiBridgeOptions> {
  return deepFreeze(checkAiBridgeOptions(validate(input)))
}

/**
 * The rules relating two keys, over options AI_BRIDGE_OPTIONS_SCHEMA has already checked and filled
 * (resolveAiBridgeOptions, or the configuration's one validation, config.ts): GH_AI_OPTIONS_INVALID.
 */
export function checkAiBridgeOptions(options: AiBridgeOptions): AiBridgeOptions {
  const problems: string[] = []
  const configured = (p: ProviderName) => p === 'local' || options.providers[p] !== undefined
  if (!options.tiers[options.defaultTier]) problems.push(`defaultTier "${options.defaultTier}" has no entry in tiers`)
  for (const [tier, route] of Object.entries(options.tiers)) {
    if (!configured(route.provider)) problems.push(`tiers.${tier}.provider "${route.provider}" is not configured in providers`)
  }
  for (const [id, o] of Object.entries(options.devices)) {
    if (o.provider && !configured(o.provider)) problems.push(`devices.${id}.provider "${o.provider}" is not configured in providers`)
  }
  if (options.windowing.messages > 1 && options.windowing.seconds <= 0) {
    problems.push('windowing.seconds must be > 0 when windowing.messages > 1, or a quiet device would never be answered')
  }
  if (options.queue.perDevice > options.queue.maxMessages) problems.push('queue.perDevice must be <= queue.maxMessages')
  if (options.retries.maxDelayMs < options.retries.baseDelayMs) problems.push('retries.maxDelayMs must be >= retries.baseDelayMs')
  if (options.providers.openai) {
    const p = httpUrlProblem('providers.openai.baseUrl', options.providers.openai.baseUrl)
    if (p) problems.push(p)
  }
  if (options.providers.webhook) {
    const p = httpUrlProblem('providers.webhook.url', options.providers.webhook.url)
    if (p) problems.push(p)
  }
  if (problems.length > 0) throw new AiOptionsInvalid(problems.join('; '))
  return options
}
