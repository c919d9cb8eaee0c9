import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { startAiBridge } from '../../helpers/ai-bridge-harness.ts'
import { chatCompletion, startHttpStub } from '../../helpers/ai-stubs.ts'
import { waitFor } from '../../helpers/wait.ts'

const limits = { requestsPerMinute: 600, burst: 100, dailyRequests: 10_000, dailyTokens: 1_000_000 }
const openaiOptions = (baseUrl: string, extra: Record<string, unknown> = {}) => ({
  windowing: { messages: 1, seconds: 0 },
  concurrency: 1,
  providers: { openai: { baseUrl: `${baseUrl}/v1`, model: 'default-model', apiKeyEnv: 'GH_TEST_OPENAI_KEY' } },
  tiers: {
    standard: { provider: 'openai' as const, model: 'llama3.2:3b', limits },
    premium: { provider: 'openai' as const, model: 'gpt-4.1', limits },
  },
  ...extra,
})
const secret = (name: string) => (name === 'GH_TEST_OPENAI_KEY' ? 'sk-live-do-not-log' : undefined)

describe('AI providers over HTTP (a local server speaking the OpenAI wire format)', () => {
  it("receives the redacted, templated prompt with the tier's model and the bearer key", async () => {
    const stub = await startHttpStub(() => chatCompletion({ summary: 'Pressure normal.', anomalies: ['valve 3 sticky'] }))
    const h = startAiBridge({
      options: {
        ...openaiOptions(stub.url),
        templates: { groups: { pumps: 'Device {{device.id}} ({{tier}}, {{group}}) site {{settings.site}}: {{telemetry}}' } },
        redaction: { default: { fields: ['customerName'], coordinatePrecision: 2 } },
      },
      secret,
    })
    h.context('pump-9', { tier: 'premium', group: 'pumps', settings: { site: 'Hall 4' } })
    h.core.telemetry('pump-9', {
      pressure: 4.2,
      customerName: 'Ada Lovelace',
      contact: 'ada@example.org',
      hotline: '+44 20 7946 0958',
      gateway: { ip: '192.168.10.77', ip6: '2001:db8::42', mac: 'a4:5e:60:e2:9b:11' },
      position: { lat: 51.507351, lon: -0.127758 },
    })
    await h.bridge.idle()

    expect(stub.requests).toHaveLength(1)
    const req = stub.requests[0]!
    expect(req).toMatchObject({ method: 'POST', path: '/v1/chat/completions' })
    expect(req.headers.authorization).toBe('Bearer sk-live-do-not-log')
    const body = req.json as { model: string; messages: { role: string; content: string }[] }
    expect(body.model).toBe('gpt-4.1')
    expect(body.messages.map((m) => m.role)).toEqual(['system', 'user'])
    const prompt = body.messages[1]!.content
    expect(prompt).toMatch(/^Device pump-9 \(premium, pumps\) site Hall 4: \[/)
    for (const gone of ['Ada Lovelace', 'customerName', 'ada@example.org', '7946', '192.168.10.77', '2001:db8::42', 'a4:5e:60'])
      expect(req.raw).not.toContain(gone)
    expect(prompt).toContain('"contact":"[email]"')
    expect(prompt).toContain('"hotline":"[phone]"')
    expect(prompt).toContain('"ip":"[ip]","ip6":"[ip]","mac":"[mac]"')
    expect(prompt).toContain('"lat":51.51,"lon":-0.13')
    expect(prompt).toContain('"pressure":4.2')

    expect(h.core.insightsOf('pump-9')).toEqual([
      expect.objectContaining({
        provider: 'openai',
        model: 'gpt-4.1',
        summary: 'Pressure normal.',
        anomalies: [{ kind: 'model', message: 'valve 3 sticky' }],
        usage: { requests: 1, promptTokens: 40, completionTokens: 20, totalTokens: 60 },
      }),
    ])
    await h.bridge.flushUsage()
    expect(await h.usage.get('pump-9', '2026-03-01')).toEqual({ requests: 1, tokens: 60 })
    expect(JSON.stringify(h.logs)).not.toContain('sk-live-do-not-log')
  })

  it('retries a 429 after its Retry-After delay, not before', async () => {
    const stub = await startHttpStub((_r, i) =>
      i === 0
        ? { status: 429, headers: { 'retry-after': '3' }, body: { error: { message: 'rate limited' } } }
        : chatCompletion({ summary: 'ok' }),
    )
    const h = startAiBridge({ options: openaiOptions(stub.url, { retries: { max: 2, baseDelayMs: 100, maxDelayMs: 10_000 } }), secret })
    h.core.telemetry('d1', { v: 1 })
    await waitFor(() => h.timers.pendingDelays().includes(3000), 5000, 'the retry to be scheduled')
    expect(stub.requests).toHaveLength(1)
    await h.timers.advance('2999ms')
    expect(h.timers.pendingDelays()).toContain(1) // the retry has not fired: it is due in 1 ms
    expect(stub.requests).toHaveLength(1)
    await h.timers.advance('1ms')
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(2)
    expect(h.core.insightsOf('d1')).toHaveLength(1)
    expect(h.bridge.stats().providers.openai).toMatchObject({ calls: 2, retries: 1, insights: 1, failed: 0 })
  })

  it('repeated 500s open the circuit (no more calls); after the cool-down a success closes it', async () => {
    let healthy = false
    const stub = await startHttpStub(() => (healthy ? chatCompletion({ summary: 'recovered' }) : { status: 500, body: { error: 'down' } }))
    const h = startAiBridge({
      options: openaiOptions(stub.url, {
        retries: { max: 0, baseDelayMs: 0, maxDelayMs: 0 },
        circuitBreaker: { failures: 3, cooldownMs: 30_000 },
      }),
      secret,
    })
    for (let i = 0; i < 6; i++) h.core.telemetry(`d${i}`, { v: i })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(3)
    expect(h.bridge.stats()).toMatchObject({ failed: 6, providers: { openai: { circuit: 'open', calls: 3, circuitRejected: 3 } } })
    expect(h.logs.find((r) => r.msg === 'ai provider request failed' && r.code === 'GH_AI_CIRCUIT_OPEN')).toBeDefined()

    healthy = true
    await h.timers.advance('30s')
    h.core.telemetry('d0', { v: 7 })
    await h.bridge.idle()
    expect(stub.requests).toHaveLength(4)
    expect(h.bridge.stats().providers.openai?.circuit).toBe('closed')
    expect(h.core.insightsOf('d0')).toEqual([expect.objectContaining({ summary: 'recovered' })])
  })

  it('times out a provider that does not answer (GH_AI_PROVIDER_TIMEOUT)', async () => {
    const stub = await startHttpStub(() => new Promise(() => {}))
    const h = startAiBridge({
      options: {
        ...openaiOptions(stub.url, { retries: { max: 0, baseDelayMs: 0, maxDelayMs: 0 } }),
        providers: { openai: { baseUrl: `${stub.url}/v1`, model: 'm', apiKeyEnv: 'GH_TEST_OPENAI_KEY', timeoutMs: 5000 } },
      },
      secret,
    })
    h.core.telemetry('d1', { v: 1 })
    await waitFor(() => stub.requests.length === 1, 5000, 'the request')
    await h.timers.advance('5s')
    await h.bridge.idle()
    expect(h.bridge.stats()).toMatchObject({ failed: 1 })
    expect(h.logs.find((r) => r.msg === 'ai provider request failed')).toMatchObject({ code: 'GH_AI_PROVIDER_TIMEOUT' })
  })

  it('signs webhook posts so the receiver can verify them with the shared secret', async () => {
    const stub = await startHttpStub((req) => {
      const expected = `sha256=${createHmac('sha256', 'whsec-shared').update(req.raw).digest('hex')}`
      return req.headers['x-gatehouse-signature'] === expected
        ? { body: { summary: 'verified', anomalies: [{ message: 'door', metric: 'door' }] } }
        : { status: 401 }
    })
    const h = startAiBridge({
      options: {
        windowing: { messages: 1, seconds: 0 },
        providers: { webhook: { url: `${stub.url}/hook`, secretEnv: 'HOOK_SECRET' } },
        tiers: { standard: { provider: 'webhook' } },
      },
      secret: (n) => (n === 'HOOK_SECRET' ? 'whsec-shared' : undefined),
    })
    h.core.telemetry('d1', { door: 1 })
    await h.bridge.idle()
    expect(stub.requests[0]?.headers['x-gatehouse-timestamp']).toBe('1772366400')
    expect(h.core.insightsOf('d1')).toEqual([
      expect.objectContaining({
        provider: 'webhook',
        summary: 'verified',
        anomalies: [{ kind: 'model', metric: 'door', message: 'door' }],
      }),
    ])
  })
})
