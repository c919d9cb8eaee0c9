import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig, type ConfigInput } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { chatCompletion, startHttpStub } from '../../helpers/ai-stubs.ts'
import { selfSignedDevice, type DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

async function start(config: ConfigInput = {}): Promise<Gatehouse> {
  const gatehouse = await startGatehouse(loadConfig({ dataDir: join(tempDir(), 'data'), mqttPort: 0, httpPort: 0, ...config }, {}), {
    log: pino({ level: 'error' }),
  })
  onTestFinished(() => gatehouse.close())
  return gatehouse
}

async function device(gatehouse: Gatehouse, id: string): Promise<DeviceCredentials> {
  const issued = await gatehouse.control.authority.createDevice({ id }, 'operator:test')
  return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
}

async function metricsKey(gatehouse: Gatehouse, scopes = ['metrics:read']): Promise<string> {
  return `Bearer ${(await gatehouse.control.apiKeys.create({ name: `k-${scopes.join('-').replace(':', '_')}`, scopes }, 'operator:test')).token}`
}

/** One scrape, as samples by series ('name{label="value",…}' exactly as exposed). */
async function scrape(url: string, authorization?: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: authorization ? { authorization } : {} })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseExposition(await res.text())
}

function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

/** How much each named series moved between two scrapes (a series absent before counts from 0). */
const delta = (before: Map<string, number>, after: Map<string, number>, series: string) =>
  (after.get(series) ?? 0) - (before.get(series) ?? 0)

describe('GET /metrics from a running Gatehouse', () => {
  it('counts connections, refusals, TLS failures, publishes, messages out, throttles and AI requests by exactly what happened', async () => {
    const stub = await startHttpStub(() => chatCompletion({ summary: 'All normal.' }))
    const gatehouse = await start({
      limits: { publishRate: { ratePerSecond: 0.01, burst: 3 } },
      ai: {
        windowing: { messages: 1 },
        tiers: { standard: { provider: 'openai', limits: { requestsPerMinute: 1, burst: 1, dailyRequests: 100, dailyTokens: 100_000 } } },
        providers: { openai: { baseUrl: stub.url, model: 'test-model' } },
      },
    })
    const key = await metricsKey(gatehouse)
    const ids = ['pump-1', 'pump-2', 'pump-3']
    const [pump1, pump2, pump3] = await Promise.all(ids.map((id) => device(gatehouse, id)))
    await gatehouse.control.authority.revokeDevice('pump-3', 'keyCompromise', 'operator:test')
    const before = await scrape(gatehouse.http.url, key)

    // pump-1: two JSON telemetry messages; the AI tier's burst of 1 forwards the first and throttles the second
    const client = await connectDevice(gatehouse.mqtt.port, pump1!)
    const insights: string[] = []
    const settings: { version: number; settings: object }[] = []
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/settings')) settings.push(JSON.parse(payload.toString()))
      else insights.push(`${topic} ${payload}`)
    })
    // its settings are pushed on subscribe; its report of that version puts it in sync
    await client.subscribeAsync(['devices/pump-1/insights', 'devices/pump-1/settings'], { qos: 1 })
    const [pushed] = await waitFor(() => (settings.length === 1 ? settings : null), 5000, 'the settings document')
    await client.publishAsync('devices/pump-1/settings/reported', JSON.stringify(pushed), { qos: 1 })
    await waitFor(async () => (await gatehouse.control.settings.syncCounts()).inSync === 1, 5000, 'the report stored')
    await client.publishAsync('devices/pump-1/telemetry', JSON.stringify({ temp: 20 }), { qos: 1 })
    await client.publishAsync('devices/pump-1/telemetry', JSON.stringify({ temp: 21 }), { qos: 1 })
    await waitFor(() => insights.length === 2, 10_000, 'an insight and a throttle notice')

    // pump-2: over its publish budget of 3 on the fourth message: disconnected (non-JSON: the AI bridge skips it)
    const noisy = await connectDevice(gatehouse.mqtt.port, pump2!)
    const closed = closedWithin(noisy)
    for (let i = 0; i < 4; i++) noisy.publish('devices/pump-2/telemetry', 'x', { qos: 0 })
    await closed

    // pump-3 is revoked: CONNACK 5; a self-signed certificate fails the TLS handshake
    expect((await attemptConnect(gatehouse.mqtt.port, pump3!)).connack).toBe(5)
    expect((await attemptConnect(gatehouse.mqtt.port, await selfSignedDevice('ghost-1', pump1!.ca))).connack).toBeNull()

    const res = await fetch(`${gatehouse.http.url}/metrics`, { headers: { authorization: key } })
    const text = await res.text()
    const after = parseExposition(text)
    const moved = (series: string) => delta(before, after, series)
    expect(after.get('gatehouse_connections')).toBe(1)
    expect(moved('gatehouse_connections_accepted_total{kind="device"}')).toBe(2)
    expect(moved('gatehouse_connections_refused_total{reason="revoked"}')).toBe(1)
    expect(moved('gatehouse_tls_handshake_failures_total{reason="DEPTH_ZERO_SELF_SIGNED_CERT"}')).toBe(1)
    expect(moved('gatehouse_publishes_received_total{class="telemetry"}')).toBe(5)
    expect(moved('gatehouse_publishes_received_total{class="settings"}')).toBe(1)
    expect(moved('gatehouse_messages_sent_total{class="insights"}')).toBe(2)
    expect(moved('gatehouse_messages_sent_total{class="settings"}')).toBe(1)
    expect(moved('gatehouse_limit_hits_total{kind="messages"}')).toBe(1)
    expect(moved('gatehouse_ai_messages_total{outcome="forwarded"}')).toBe(1)
    expect(moved('gatehouse_ai_messages_total{outcome="throttled"}')).toBe(1)
    expect(moved('gatehouse_ai_messages_total{outcome="skipped"}')).toBe(3)
    expect(moved('gatehouse_ai_tokens_total{tier="standard"}')).toBe(60)
    expect(moved('gatehouse_ai_provider_calls_total{provider="openai"}')).toBe(1)
    expect(moved('gatehouse_ai_provider_latency_seconds_count{provider="openai"}')).toBe(1)
    expect(after.get('gatehouse_ai_queue_depth')).toBe(0)
    expect(moved('gatehouse_registry_lookup_seconds_count{query="device"}')).toBe(3)
    // the control plane's series, read at scrape time
    expect(after.get('gatehouse_certificates_expiring{within="30d"}')).toBe(0)
    expect(after.get('gatehouse_ca_expiry_timestamp_seconds{role="issuing"}')).toBeGreaterThan(Date.now() / 1000)
    expect(after.get('gatehouse_change_feed_lag_events')).toBe(0)
    // the audit records: none failed, none dropped over the pending bound (registry-directory.test.ts drops some)
    expect(after.get('gatehouse_audit_write_failures_total')).toBe(0)
    expect(after.get('gatehouse_audit_dropped_total')).toBe(0)
    expect(after.get('gatehouse_settings_devices{state="in-sync"}')).toBe(1)
    expect(after.get('gatehouse_settings_devices{state="out-of-sync"}')).toBe(1)
    expect([...after.keys()].some((s) => s.startsWith('gatehouse_nodejs_eventloop_lag_seconds'))).toBe(true)
    expect([...after.keys()].some((s) => s.startsWith('gatehouse_process_resident_memory_bytes'))).toBe(true)
    expect([...after.keys()].some((s) => s.startsWith('gatehouse_build_info{version="0.1.0"'))).toBe(true)
    // bounded labels: no device id anywhere in the exposition
    for (const id of [...ids, 'ghost-1']) expect(text).not.toContain(id)
  })

  it("counts the control plane's limit hits: the API's per-key rate (429), the claim request rate and the dashboard sign-in rate", async () => {
    const gatehouse = await start({
      metricsPort: 0,
      httpRateLimit: { ratePerSecond: 0.01, burst: 3 },
      claimRequestRate: { ratePerSecond: 0.01, burst: 1 },
    })
    const before = await scrape(gatehouse.metricsHttp!.url)

    // a real key over real HTTP: the burst of 3 answers, the next two are 429
    const key = await metricsKey(gatehouse, ['devices:read'])
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${gatehouse.http.url}/v1/devices`, { headers: { authorization: key } })).status)
    expect(statuses).toEqual([200, 200, 200, 429, 429])

    // a claim session over MQTT: the burst of 1 answers its first request, the second is over the claim's rate
    const created = await gatehouse.control.claims.create({ group: 'pumps', maxUses: 5 }, 'operator:test')
    const claim = {
      deviceId: `claim:${created.claim.id}`,
      cert: created.certificatePem,
      key: created.privateKeyPem,
      ca: created.chainPem,
      serial: created.claim.serial,
    }
    const nonce = 'nonce-aaaaaaaaaaaaaaaa'
    const session = await connectDevice(gatehouse.mqtt.port, claim, { clientId: `claim:${nonce}`, clean: true })
    const codes: string[] = []
    session.on('message', (_topic, payload) => codes.push((JSON.parse(payload.toString()) as { error: { code: string } }).error.code))
    await session.subscribeAsync(`provisioning/${nonce}/response`, { qos: 1 })
    for (let i = 0; i < 2; i++) {
      await session.publishAsync(`provisioning/${nonce}/request`, JSON.stringify({ deviceId: `pump-${i}`, csr: 'not a csr' }), { qos: 1 })
    }
    await waitFor(() => codes.length === 2, 5000, 'two answers')
    expect(codes[1]).toBe('GH_CLAIM_RATE_LIMITED')

    // 11 wrong dashboard sign-ins from one address: 10 are looked at (401), the 11th is over the address's limit
    const signIns: number[] = []
    for (let i = 0; i < 11; i++) {
      const res = await fetch(`${gatehouse.http.url}/dashboard/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'ghk_000000000000_wrong' }),
      })
      signIns.push(res.status)
    }
    expect(signIns).toEqual([...Array(10).fill(401), 429])

    const after = await scrape(gatehouse.metricsHttp!.url)
    expect(delta(before, after, 'gatehouse_limit_hits_total{kind="api-rate"}')).toBe(2)
    expect(delta(before, after, 'gatehouse_limit_hits_total{kind="claim-rate"}')).toBe(1)
    expect(delta(before, after, 'gatehouse_limit_hits_total{kind="sign-in-rate"}')).toBe(1)
  })

  it('counts the certificates that expire within 7 and 30 days', async () => {
    const gatehouse = await start({ certValidDays: 20 })
    await device(gatehouse, 'soon-1')
    const samples = await scrape(gatehouse.http.url, await metricsKey(gatehouse))
    expect(samples.get('gatehouse_certificates_expiring{within="7d"}')).toBe(0)
    expect(samples.get('gatehouse_certificates_expiring{within="30d"}')).toBe(1)
  })

  it('answers 401 without a key and 403 to a key without metrics:read', async () => {
    const gatehouse = await start()
    const noKey = await fetch(`${gatehouse.http.url}/metrics`)
    expect(noKey.status).toBe(401)
    expect(((await noKey.json()) as { code: string }).code).toBe('GH_API_KEY_MISSING')
    const wrongScope = await fetch(`${gatehouse.http.url}/metrics`, {
      headers: { authorization: await metricsKey(gatehouse, ['devices:read']) },
    })
    expect(wrongScope.status).toBe(403)
    expect(((await wrongScope.json()) as { code: string }).code).toBe('GH_API_KEY_SCOPE')
  })

  it('serves /metrics on metricsPort without a key, and then not on the API port', async () => {
    const gatehouse = await start({ metricsPort: 0 })
    expect(gatehouse.metricsHttp?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const samples = await scrape(gatehouse.metricsHttp!.url)
    expect(samples.get('gatehouse_connections')).toBe(0)
    const onApi = await fetch(`${gatehouse.http.url}/metrics`, { headers: { authorization: await metricsKey(gatehouse) } })
    expect(onApi.status).toBe(404)
  })
})
