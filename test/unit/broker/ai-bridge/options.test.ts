import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import {
  AI_BRIDGE_OPTIONS_SCHEMA,
  DEFAULT_TEMPLATE,
  PREMIUM_LIMITS,
  resolveAiBridgeOptions,
  STANDARD_LIMITS,
} from '../../../../broker/ai-bridge/options.ts'

const problems = (input: unknown): string => {
  try {
    resolveAiBridgeOptions(input as Record<string, unknown>)
  } catch (err) {
    expect(err).toMatchObject({ code: 'GH_AI_OPTIONS_INVALID' })
    return (err as Error).message
  }
  throw new Error('expected GH_AI_OPTIONS_INVALID')
}

describe('resolveAiBridgeOptions', () => {
  it('zero configuration: the local provider for every tier, safe limits, deeply frozen', () => {
    const o = resolveAiBridgeOptions()
    expect(o.tiers).toEqual({
      standard: { provider: 'local', limits: STANDARD_LIMITS },
      premium: { provider: 'local', limits: PREMIUM_LIMITS },
    })
    expect(o.providers).toEqual({
      local: { model: 'gatehouse-local-stats', minSamples: 10, zThreshold: 3, trendWindow: 20, maxMetrics: 64 },
    })
    expect(o).toMatchObject({
      defaultTier: 'standard',
      queue: { maxMessages: 10_000, perDevice: 100 },
      windowing: { messages: 10, seconds: 10 },
      retries: { max: 3, baseDelayMs: 500, maxDelayMs: 30_000 },
      circuitBreaker: { failures: 5, cooldownMs: 30_000 },
      templates: { default: DEFAULT_TEMPLATE, groups: {} },
    })
    expect(Object.isFrozen(o.tiers.standard?.limits)).toBe(true)
  })

  it('fills defaults inside what is given, and leaves the input alone', () => {
    const input = { tiers: { gold: { provider: 'local' as const, limits: { burst: 7 } } }, defaultTier: 'gold' }
    const o = resolveAiBridgeOptions(input)
    expect(o.tiers).toEqual({ gold: { provider: 'local', limits: { ...STANDARD_LIMITS, burst: 7 } } })
    expect(input.tiers.gold.limits).toEqual({ burst: 7 })
  })

  it('reports every problem at once', () => {
    const message = problems({
      queue: { maxMessages: 0 },
      tiers: { standard: { provider: 'openai', modle: 'x' } },
      devices: { 'bad id': {} },
      retries: { max: -1 },
      foo: 1,
    })
    expect(message).toContain('unknown key "foo"')
    expect(message).toContain('unknown key "tiers.standard.modle"')
    expect(message).toContain('queue.maxMessages must be >= 1')
    expect(message).toContain('devices has an invalid key "bad id"')
    expect(message).toContain('retries.max must be >= 0')
  })

  it.each([
    ['fail/provider-not-configured', { tiers: { standard: { provider: 'openai' } } }, 'tiers.standard.provider "openai" is not configured'],
    [
      'fail/device-provider-not-configured',
      { devices: { d1: { provider: 'webhook' } } },
      'devices.d1.provider "webhook" is not configured',
    ],
    ['fail/default-tier-missing', { defaultTier: 'gold' }, 'defaultTier "gold" has no entry in tiers'],
    ['fail/window-never-flushes', { windowing: { messages: 5, seconds: 0 } }, 'windowing.seconds must be > 0'],
    ['fail/bad-url', { providers: { openai: { baseUrl: 'ftp://x', model: 'm' } } }, 'providers.openai.baseUrl must be an http(s) URL'],
    ['fail/openai-needs-model', { providers: { openai: { baseUrl: 'http://x' } } }, "must have required property 'model'"],
    ['fail/webhook-needs-secret', { providers: { webhook: { url: 'http://x' } } }, "must have required property 'secretEnv'"],
    [
      'fail/env-name',
      { providers: { openai: { baseUrl: 'http://x', model: 'm', apiKeyEnv: 'sk-live-123' } } },
      'apiKeyEnv must match pattern',
    ],
    ['fail/per-device-over-total', { queue: { maxMessages: 10, perDevice: 11 } }, 'queue.perDevice must be <= queue.maxMessages'],
  ])('%s', (_name, input, expected) => {
    expect(problems(input)).toContain(expected)
  })

  it('the schema compiles with the options config.ts uses (strict, defaults, coercion), so config.ts can embed it', () => {
    const validate = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: 'array', strict: true }).compile(AI_BRIDGE_OPTIONS_SCHEMA)
    const doc: Record<string, unknown> = { concurrency: '4' }
    expect(validate(doc)).toBe(true)
    expect(doc).toMatchObject({ concurrency: 4, tiers: { standard: { provider: 'local' } } })
  })
})
