import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { startAiBridge } from '../../../helpers/ai-bridge-harness.ts'
import { chatCompletion, startHttpStub } from '../../../helpers/ai-stubs.ts'
import { waitFor } from '../../../helpers/wait.ts'

const local1 = (limits: Record<string, number> = {}) => ({
  windowing: { messages: 1, seconds: 0 },
  tiers: {
    standard: {
      provider: 'local' as const,
      limits: { requestsPerMinute: 600, burst: 100, dailyRequests: 10_000, dailyTokens: 1_000_000, ...limits },
    },
  },
})

const openai = (extra: Record<string, unknown> = {}, baseUrl = 'http://ai.test/v1') => ({
  windowing: { messages: 1, seconds: 0 },
  providers: { openai: { baseUrl, model: 'base-model', apiKeyEnv: 'TEST_AI_KEY' } },
  tiers: {
    standard: {
      provider: 'openai' as const,
      model: 'small-model',
      limits: { requestsPerMinute: 600, burst: 100, dailyRequests: 10_000, dailyTokens: 1_000_000 },
    },
    premium: {
      provider: 'openai' as const,
      model: 'large-model',
      limits: { requestsPerMinute: 600, burst: 100, dailyRequests: 10_000, dailyTokens: 1_000_000 },
    },
  },
  ...extra,
})
const secret = (name: string) => (name === 'TEST_AI_KEY' ? 'sk-test-123' : undefined)

describe('attachAiBridge', () => {
  it('turns a device telemetry message into an insight on devices/{id}/insights (QoS 1), stored and counted', async () => {
    const h = startAiBridge({ options: local1() })
    h.core.telemetry('pump-1', { temp: 21.5 })
    await h.bridge.idle()
    expect(h.core.sent).toHaveLength(1)
    expect(h.core.sent[0]).toMatchObject({ topic: 'devices/pump-1/insights', qos: 1 })
    const insight = h.core.insightsOf('pump-1')[0]
    expect(insight).toMatchObject({
      type: 'insight',
      deviceId: 'pump-1',
      provider: 'local',
      model: 'gatehouse-local-stats',
      at: '2026-03-01T12:00:00.000Z',
      anomalies: [],
      usage: { requests: 1, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
    })
    expect(insight?.id).toMatch(/^[0-9a-f]{32}$/)
    expect(await h.usage.listInsights('pump-1')).toEqual([insight])
    await h.bridge.flushUsage() // budgets are written behind (usageFlushSeconds)
    expect(await h.usage.get('pump-1', '2026-03-01')).toEqual({ requests: 1, tokens: 0 })
    expect(h.bridge.stats()).toMatchObject({
      received: 1,
      forwarded: 1,
      insights: 1,
      failed: 0,
      throttled: 0,
      providers: { local: { calls: 1, insights: 1 } },
    })
  })

  it('the token bucket allows exactly the burst, then refills at requestsPerMinute; one notice per throttled episode', async () => {
    const h = startAiBridge({ options: local1({ requestsPerMinute: 6, burst: 3 }) })
    for (let i = 0; i < 5; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(3)
    expect(h.core.noticesOf('d1')).toEqual([{ type: 'throttled', deviceId: 'd1', reason: 'rate', retryAt: '2026-03-01T12:00:10.000Z' }])
    expect(h.bridge.stats()).toMatchObject({ throttled: 2, throttleNotices: 1 })
    expect(h.bridge.stats().throttledByTier).toEqual({ standard: 2 })

    await h.timers.advance('9999ms')
    h.core.telemetry('d1', { v: 5 })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(3) // still inside the episode: no second notice
    expect(h.core.noticesOf('d1')).toHaveLength(1)

    await h.timers.advance('1ms') // 10 s after the burst: one token (6/min)
    h.core.telemetry('d1', { v: 6 })
    h.core.telemetry('d1', { v: 7 })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(4)
    // admitted in between, so this throttle starts a new episode with a new notice
    expect(h.core.noticesOf('d1')).toHaveLength(2)
    expect(h.core.noticesOf('d1')[1]).toMatchObject({ reason: 'rate', retryAt: '2026-03-01T12:00:20.000Z' })
    expect(h.bridge.stats()).toMatchObject({ throttled: 4, throttleNotices: 2, insights: 4 })
    expect(h.bridge.stats().throttledByTier).toEqual({ standard: 4 })
  })

  it('the daily request budget allows exactly dailyRequests per UTC day, then throttles until midnight', async () => {
    const h = startAiBridge({ options: local1({ dailyRequests: 3 }) })
    for (let i = 0; i < 5; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(3)
    expect(h.core.noticesOf('d1')).toEqual([
      { type: 'throttled', deviceId: 'd1', reason: 'daily-requests', retryAt: '2026-03-02T00:00:00.000Z' },
    ])
    expect(await h.usage.get('d1', '2026-03-01')).toEqual({ requests: 3, tokens: 0 })

    h.clock.set('2026-03-01T23:59:59.999Z')
    h.core.telemetry('d1', { v: 9 })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(3)
    expect(h.core.noticesOf('d1')).toHaveLength(1)

    h.clock.set('2026-03-02T00:00:00Z')
    h.core.telemetry('d1', { v: 10 })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(4)
    expect(await h.usage.get('d1', '2026-03-02')).toEqual({ requests: 1, tokens: 0 })
  })

  it('the daily token budget stops forwarding once the tokens the provider reported reach dailyTokens', async () => {
    const stub = await startHttpStub(() =>
      chatCompletion({ summary: 'ok', anomalies: [] }, { prompt_tokens: 40, completion_tokens: 20, total_tokens: 60 }),
    )
    const options = openai({}, `${stub.url}/v1`)
    options.tiers.standard.limits.dailyTokens = 100
    const h = startAiBridge({ options, secret })
    for (let i = 0; i < 3; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(2) // 0 -> 60 -> 120 tokens: the third is refused
    await h.bridge.flushUsage()
    expect(await h.usage.get('d1', '2026-03-01')).toEqual({ requests: 2, tokens: 120 })
    expect(h.core.noticesOf('d1')).toEqual([
      { type: 'throttled', deviceId: 'd1', reason: 'daily-tokens', retryAt: '2026-03-02T00:00:00.000Z' },
    ])
    expect(h.core.insightsOf('d1')[0]).toMatchObject({
      provider: 'openai',
      model: 'small-model',
      usage: { requests: 1, promptTokens: 40, completionTokens: 20, totalTokens: 60 },
    })
    expect(h.bridge.stats().providers.openai).toMatchObject({ calls: 2, insights: 2, tokens: 120 })
  })

  it('per-device overrides change the limits and the route', async () => {
    const stub = await startHttpStub(() => chatCompletion({ summary: 'ok' }))
    const h = startAiBridge({
      options: {
        ...openai({}, `${stub.url}/v1`),
        devices: { 'vip-1': { model: 'vip-model', limits: { burst: 1, requestsPerMinute: 1 } }, 'cheap-1': { provider: 'local' } },
      },
      secret,
    })
    h.core.telemetry('vip-1', { v: 1 })
    h.core.telemetry('vip-1', { v: 2 })
    h.core.telemetry('cheap-1', { v: 1 })
    await h.bridge.idle()
    expect(stub.requests.map((r) => (r.json as { model: string }).model)).toEqual(['vip-model'])
    expect(h.core.noticesOf('vip-1')).toHaveLength(1)
    expect(h.core.insightsOf('cheap-1')[0]).toMatchObject({ provider: 'local', model: 'gatehouse-local-stats' })
  })

  it('routes by tier: a premium device gets the premium model', async () => {
    const stub = await startHttpStub(() => chatCompletion({ summary: 'ok' }))
    const h = startAiBridge({ options: openai({}, `${stub.url}/v1`), secret })
    h.context('gold-1', { tier: 'premium' })
    h.context('std-1', { tier: 'standard' })
    h.context('odd-1', { tier: 'unknown-tier' })
    h.core.telemetry('gold-1', { v: 1 })
    h.core.telemetry('std-1', { v: 1 })
    h.core.telemetry('odd-1', { v: 1 })
    await h.bridge.idle()
    const byDevice = Object.fromEntries(
      stub.requests.map((r) => {
        const prompt = (r.json as { messages: { content: string }[] }).messages[1]?.content ?? ''
        return [/device (\S+) /.exec(prompt)?.[1], (r.json as { model: string }).model]
      }),
    )
    expect(byDevice).toEqual({ 'gold-1': 'large-model', 'std-1': 'small-model', 'odd-1': 'small-model' })
  })

  it('consent false sends nothing, and withdrawing consent drops an open window', async () => {
    const stub = await startHttpStub(() => chatCompletion({ summary: 'ok' }))
    const h = startAiBridge({ options: { ...openai({}, `${stub.url}/v1`), windowing: { messages: 3, seconds: 60 } }, secret })
    h.context('private-1', { settings: { ai: { consent: false } } })
    for (let i = 0; i < 5; i++) h.core.telemetry('private-1', { v: i, email: 'a@b.example' })
    h.core.telemetry('open-1', { v: 1 })
    await h.bridge.idle()
    h.context('open-1', { settings: { ai: { consent: false } } })
    await h.timers.advance('60s')
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(0)
    expect(h.core.sent).toHaveLength(0)
    expect(await h.usage.get('private-1', '2026-03-01')).toEqual({ requests: 0, tokens: 0 })
    expect(h.bridge.stats()).toMatchObject({ noConsent: 6, forwarded: 0, openWindows: 0 })
  })

  it('counts and skips non-JSON and oversized telemetry without throwing, and goes on with the next message', async () => {
    const h = startAiBridge({ options: { ...local1(), maxTelemetryBytes: 64 } })
    h.core.telemetry('d1', 'not json {')
    h.core.telemetry('d1', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])) // not UTF-8
    h.core.telemetry('d1', { pad: 'x'.repeat(100) })
    h.core.telemetry('d1', '21.5', 'engine', 'temp') // a bare JSON number on a subtopic is fine
    await h.bridge.idle()
    expect(h.bridge.stats()).toMatchObject({ received: 4, skipped: 3, skippedInvalid: 2, skippedOversized: 1, insights: 1 })
    expect(h.core.insightsOf('d1')[0]?.summary).toContain('engine.temp 21.5')
  })

  it('drops and counts telemetry when the queue is full, and logs that at a bounded rate', async () => {
    const h = startAiBridge({ options: { ...local1(), concurrency: 1, queue: { maxMessages: 4, perDevice: 2 } } })
    // nothing is taken from the queue until the current microtask ends: all of these arrive at once
    for (let i = 0; i < 5; i++) h.core.telemetry('a', { v: i })
    for (let i = 0; i < 5; i++) h.core.telemetry('b', { v: i })
    h.core.telemetry('c', { v: 1 })
    expect(h.bridge.stats()).toMatchObject({ received: 11, dropped: 7, queueDepth: 4 })
    await h.bridge.idle()
    expect(h.bridge.stats()).toMatchObject({ dropped: 7, insights: 4, queueDepth: 0 })
    const warnings = h.logs.filter((r) => r.msg === 'ai bridge queue full; telemetry dropped')
    expect(warnings).toHaveLength(1)
  })

  it("one device's flood does not delay another device's insight (round-robin across devices)", async () => {
    const h = startAiBridge({ options: { ...local1({ burst: 1000 }), concurrency: 1, queue: { maxMessages: 1000, perDevice: 500 } } })
    for (let i = 0; i < 200; i++) h.core.telemetry('flood', { v: i })
    h.core.telemetry('quiet', { v: 1 })
    await h.bridge.idle()
    const order = h.core.sent.map((s) => s.deviceId)
    expect(order).toHaveLength(201)
    expect(order.indexOf('quiet')).toBeLessThanOrEqual(1) // FIFO would make it 200
  })

  it('windows a device telemetry: one request per N messages, or after T seconds', async () => {
    const h = startAiBridge({ options: { ...local1(), windowing: { messages: 3, seconds: 30 } } })
    for (let i = 0; i < 4; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(1)
    expect(h.core.insightsOf('d1')[0]?.summary).toMatch(/^3 samples/)
    expect(h.bridge.stats().openWindows).toBe(1)
    await h.timers.advance('29999ms')
    expect(h.core.insightsOf('d1')).toHaveLength(1)
    await h.timers.advance('1ms')
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(2)
    expect(h.core.insightsOf('d1')[1]?.summary).toMatch(/^1 samples/)
    expect(await h.usage.get('d1', '2026-03-01')).toEqual({ requests: 2, tokens: 0 })
  })

  it('renders the group template with variables from settings, group and telemetry, all redacted', async () => {
    const stub = await startHttpStub(() => chatCompletion('plain text answer'))
    const h = startAiBridge({
      options: {
        ...openai({}, `${stub.url}/v1`),
        templates: {
          default: 'unused',
          groups: {
            pumps:
              'Pump {{device.id}} in {{group}} at {{settings.site.region}} owned by {{settings.site.contact}}: latest {{latest.temp}}; {{telemetry}}',
          },
        },
        redaction: { groups: { pumps: { fields: ['serialNo'], coordinatePrecision: 1 } } },
      },
      secret,
    })
    h.context('p1', { group: 'pumps', settings: { site: { region: 'North', contact: 'ops@example.com' } } })
    h.core.telemetry('p1', { temp: 80, serialNo: 'SN-1', lat: 52.520008, note: 'call +49 30 1234567' })
    await h.bridge.idle()
    const body = stub.requests[0]?.json as { model: string; messages: { role: string; content: string }[] }
    const prompt = body.messages[1]?.content ?? ''
    expect(prompt).toMatch(/^Pump p1 in pumps at North owned by \[email\]: latest 80; \[/)
    expect(prompt).toContain('"lat":52.5')
    expect(prompt).toContain('call [phone]')
    expect(prompt).not.toContain('SN-1')
    expect(prompt).not.toContain('serialNo')
    expect(stub.requests[0]?.headers.authorization).toBe('Bearer sk-test-123')
    expect(h.core.insightsOf('p1')[0]).toMatchObject({ summary: 'plain text answer', anomalies: [] })
    expect(JSON.stringify(h.logs)).not.toContain('sk-test-123')
  })

  it('signs webhook requests: X-Gatehouse-Signature is the HMAC-SHA256 of the raw body', async () => {
    const stub = await startHttpStub(() => ({ body: { summary: 'hooked', anomalies: ['door open'] } }))
    const h = startAiBridge({
      options: {
        windowing: { messages: 1, seconds: 0 },
        providers: { webhook: { url: `${stub.url}/insight`, secretEnv: 'HOOK_SECRET' } },
        tiers: { standard: { provider: 'webhook' } },
      },
      secret: (n) => (n === 'HOOK_SECRET' ? 'whsec-42' : undefined),
    })
    h.context('d1', { settings: { wifi_password_secret: 'hunter2' } })
    h.core.telemetry('d1', { door: 'open', ip: '10.1.2.3' })
    await h.bridge.idle()
    const req = stub.requests[0]
    expect(req?.path).toBe('/insight')
    const expected = `sha256=${createHmac('sha256', 'whsec-42')
      .update(req?.raw ?? '')
      .digest('hex')}`
    expect(req?.headers['x-gatehouse-signature']).toBe(expected)
    expect(req?.headers['x-gatehouse-timestamp']).toBe(String(Date.parse('2026-03-01T12:00:00Z') / 1000))
    expect(req?.json).toMatchObject({
      deviceId: 'd1',
      model: 'webhook',
      timestamp: 1772366400,
      context: { tier: 'standard', group: null },
      telemetry: [{ data: { door: 'open', ip: '[ip]' } }],
    })
    expect(req?.raw).not.toContain('hunter2')
    expect(h.core.insightsOf('d1')[0]).toMatchObject({
      provider: 'webhook',
      summary: 'hooked',
      anomalies: [{ kind: 'model', message: 'door open' }],
    })
  })

  it('retries a 429 after its Retry-After, not before', async () => {
    const stub = await startHttpStub((_r, i) =>
      i === 0 ? { status: 429, headers: { 'retry-after': '2' }, body: { error: 'slow down' } } : chatCompletion({ summary: 'ok' }),
    )
    const h = startAiBridge({ options: openai({ retries: { max: 3, baseDelayMs: 100, maxDelayMs: 10_000 } }, `${stub.url}/v1`), secret })
    h.core.telemetry('d1', { v: 1 })
    await waitFor(() => h.timers.pendingDelays().includes(2000), 5000, 'the 429 answered and its retry scheduled')
    expect(stub.requests).toHaveLength(1)
    expect(h.timers.pendingDelays()).toEqual([2000, 5000]) // the Retry-After, and the usage flush
    await h.timers.advance('1999ms')
    expect(stub.requests).toHaveLength(1)
    await h.timers.advance('1ms')
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(2)
    expect(h.core.insightsOf('d1')).toHaveLength(1)
    expect(h.bridge.stats().providers.openai).toMatchObject({ calls: 2, retries: 1, failed: 0 })
  })

  it('does not retry a 4xx other than 429, and counts the request as failed', async () => {
    const stub = await startHttpStub(() => ({ status: 401, body: { error: 'bad key' } }))
    const h = startAiBridge({ options: openai({}, `${stub.url}/v1`), secret })
    h.core.telemetry('d1', { v: 1 })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(1)
    expect(h.core.sent).toHaveLength(0)
    expect(h.bridge.stats()).toMatchObject({ failed: 1, providers: { openai: { failed: 1, retries: 0 } } })
    expect(h.logs.find((r) => r.msg === 'ai provider request failed')).toMatchObject({
      code: 'GH_AI_PROVIDER_FAILED',
      status: 401,
      provider: 'openai',
    })
  })

  it('opens the circuit after consecutive failures, and closes it after the cool-down on success', async () => {
    let healthy = false
    const stub = await startHttpStub(() => (healthy ? chatCompletion({ summary: 'back' }) : { status: 500 }))
    const h = startAiBridge({
      options: openai(
        {
          concurrency: 1,
          retries: { max: 0, baseDelayMs: 0, maxDelayMs: 0 },
          circuitBreaker: { failures: 3, cooldownMs: 60_000 },
        },
        `${stub.url}/v1`,
      ),
      secret,
    })
    for (let i = 0; i < 5; i++) h.core.telemetry(`d${i}`, { v: i })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(3)
    expect(h.bridge.stats().providers.openai).toMatchObject({ circuit: 'open', failed: 5, circuitRejected: 2 })

    healthy = true
    await h.timers.advance('59s')
    h.core.telemetry('d9', { v: 9 })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(3)

    await h.timers.advance('1s')
    expect(h.bridge.stats().providers.openai?.circuit).toBe('half-open')
    h.core.telemetry('d9', { v: 10 })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(4)
    expect(h.bridge.stats().providers.openai?.circuit).toBe('closed')
    expect(h.core.insightsOf('d9')).toEqual([expect.objectContaining({ summary: 'back' })])
  })

  it('refuses to start when a routed provider misses its secret (GH_AI_SECRET_MISSING)', () => {
    expect(() => startAiBridge({ options: openai(), secret: () => undefined })).toThrow(
      expect.objectContaining({ code: 'GH_AI_SECRET_MISSING' }),
    )
  })

  it('telemetry joins an open window without a job: the control plane is asked when it opens and at flush, and each message is parsed once', async () => {
    const h = startAiBridge({ options: { ...local1(), windowing: { messages: 5, seconds: 30 } } })
    h.core.telemetry('d1', { v: 1 })
    await h.bridge.idle()
    h.core.telemetry('d1', 'not json')
    for (let i = 2; i <= 4; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.contextCalls).toEqual(['d1', 'd1'])
    const [insight] = h.core.insightsOf('d1')
    expect(insight?.summary).toMatch(/^4 samples/)
    expect(h.bridge.stats()).toMatchObject({ received: 5, forwarded: 4, skippedInvalid: 1, insights: 1, openWindows: 0 })
  })

  it("a throttled device's telemetry is counted in the hand-off without any work, re-checked every second", async () => {
    const h = startAiBridge({ options: local1({ requestsPerMinute: 6, burst: 1 }) })
    h.core.telemetry('d1', { v: 0 })
    await h.bridge.idle()
    h.core.telemetry('d1', { v: 1 }) // refused: the episode starts (retry in 10 s)
    await h.bridge.idle()
    expect(h.contextCalls).toHaveLength(3) // admission and flush of the first, the refused second
    for (let i = 0; i < 5; i++) h.core.telemetry('d1', { v: i })
    await h.bridge.idle()
    expect(h.contextCalls).toHaveLength(3) // counted, not queued, not parsed
    expect(h.bridge.stats()).toMatchObject({ received: 7, throttled: 6, throttleNotices: 1, throttledByTier: { standard: 6 } })
    h.clock.advance('1s')
    h.core.telemetry('d1', { v: 6 }) // a second later the limits are checked again (a raised limit applies)
    await h.bridge.idle()
    expect(h.contextCalls).toHaveLength(4)
    h.clock.advance('9s')
    h.core.telemetry('d1', { v: 7 })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')).toHaveLength(2)
    expect(h.core.noticesOf('d1')).toHaveLength(1)
  })

  it("a flood when a throttled device's limits are re-checked: a probe and what its window can take are queued, the rest is counted, nothing dropped", async () => {
    const options = {
      ...local1({ requestsPerMinute: 6, burst: 1 }),
      windowing: { messages: 3, seconds: 30 },
      queue: { maxMessages: 100, perDevice: 5 },
    }
    const h = startAiBridge({ options })
    for (let i = 0; i < 3; i++) h.core.telemetry('d1', { v: i }) // one window, one request
    await h.bridge.idle()
    h.core.telemetry('d1', { v: 3 }) // refused: the episode starts (retry in 10 s)
    await h.bridge.idle()
    const calls = h.contextCalls.length
    h.clock.advance('1s') // re-checked: still over the rate
    for (let i = 0; i < 20; i++) h.core.telemetry('d1', { v: 10 + i }) // one read of the socket: no job runs in between
    await h.bridge.idle()
    expect(h.contextCalls.length - calls).toBe(1) // the probe; the 3 behind it were counted once it was refused
    expect(h.bridge.stats()).toMatchObject({ received: 24, dropped: 0, throttled: 21, throttleNotices: 1, insights: 1 })

    h.clock.advance('10s') // a token again: the probe is admitted and the messages behind it fill its window
    for (let i = 0; i < 20; i++) h.core.telemetry('d1', { v: 40 + i })
    await h.bridge.idle()
    expect(h.core.insightsOf('d1')[1]?.summary).toMatch(/^3 samples/)
    // the third follower asked for the next request: refused, a new episode (its notice); the other 16 counted
    expect(h.core.noticesOf('d1')).toHaveLength(2)
    expect(h.bridge.stats()).toMatchObject({ received: 44, dropped: 0, throttled: 21 + 17, throttleNotices: 2, insights: 2 })
  })

  it('insight ids stay 16 random bytes, distinct, past the 64 ids drawn at a time', async () => {
    const h = startAiBridge({ options: local1() })
    for (let i = 0; i < 70; i++) h.core.telemetry(`d${i}`, { v: i })
    await h.bridge.idle()
    const ids = Array.from({ length: 70 }, (_, i) => h.core.insightsOf(`d${i}`)[0]?.id)
    expect(ids.every((id) => /^[0-9a-f]{32}$/.test(String(id)))).toBe(true)
    expect(new Set(ids).size).toBe(70)
  })

  it('telemetry queued before a throttle episode began is counted without any work once it begins', async () => {
    const h = startAiBridge({ options: local1({ requestsPerMinute: 6, burst: 1 }) })
    for (let i = 0; i < 6; i++) h.core.telemetry('d1', { v: i }) // all queued before the first is admitted
    await h.bridge.idle()
    expect(h.contextCalls).toHaveLength(3) // admission and flush of the first, the refused second; the rest: nothing
    expect(h.bridge.stats()).toMatchObject({ received: 6, throttled: 5, throttleNotices: 1, insights: 1 })
  })

  it('detach stops listening, drops open windows and waits for running jobs', async () => {
    const h = startAiBridge({ options: { ...local1(), windowing: { messages: 5, seconds: 30 } } })
    h.core.telemetry('d1', { v: 1 })
    await h.bridge.idle()
    expect(h.timers.pending()).toBe(2) // the window's, and the usage flush
    await h.bridge.detach()
    expect(h.core.listenerCount()).toBe(0)
    expect(h.timers.pending()).toBe(0)
    h.core.telemetry('d1', { v: 2 })
    expect(h.bridge.stats()).toMatchObject({ received: 1, openWindows: 0 })
  })
})
