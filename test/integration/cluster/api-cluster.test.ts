import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice } from '../../helpers/mqtt-clients.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'
import { redisAvailable } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'
import { startClusterWorld, type ClusterWorld } from './cluster-world.ts'

// The HTTP API's state shared by the nodes of a cluster (issue 13): dashboard sessions in the registry's
// database, the per-key rate limit and a claim's request rate in Redis. Nodes A, B, C: three startGatehouse on one
// Redis, as `--workers 3` runs them (a worker is a whole node) or three machines behind a load balancer.

/** one node's API: a JSON request with a Bearer key or the dashboard's cookie (and CSRF token) */
function api(w: ClusterWorld, i: number) {
  const base = (w.nodes[i] as ClusterWorld['nodes'][number]).http.url
  return (path: string, init: { method?: string; bearer?: string; cookie?: string; csrf?: string; body?: unknown } = {}) =>
    fetch(`${base}${path}`, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: {
        ...(init.bearer && { authorization: `Bearer ${init.bearer}` }),
        ...(init.cookie && { cookie: init.cookie }),
        ...(init.csrf && { 'x-csrf-token': init.csrf }),
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    })
}

/** signs in with `key` through node i: the cookie to send back */
async function signIn(w: ClusterWorld, i: number, key: string): Promise<string> {
  const res = await api(w, i)('/dashboard/sign-in', { method: 'POST', body: { key } })
  expect(res.status).toBe(200)
  return (res.headers.get('set-cookie') as string).split(';')[0] as string
}

/** The session signed in through A serves B and C (the same CSRF token, a POST checked on C), survives A's restart, and ends everywhere with its key. */
async function sessionAcrossNodes(w: ClusterWorld): Promise<void> {
  const { token, key } = await w.operator.apiKeys.create({ name: `dash-${Date.now()}`, scopes: ['dashboard'] }, 'operator:test')
  const cookie = await signIn(w, 0, token)
  const onA = (await (await api(w, 0)('/dashboard/api/session', { cookie })).json()) as { csrfToken: string }
  const onB = await api(w, 1)('/dashboard/api/session', { cookie })
  expect(onB.status).toBe(200)
  expect(((await onB.json()) as { csrfToken: string }).csrfToken).toBe(onA.csrfToken)
  const device = `api-cluster-${Date.now()}`
  await w.operator.authority.createDevice({ id: device }, 'operator:test')
  const disabled = await api(w, 2)(`/dashboard/api/devices/${device}/disable`, { method: 'POST', cookie, csrf: onA.csrfToken, body: {} })
  expect(disabled.status).toBe(200)
  expect((await api(w, 2)(`/dashboard/api/devices/${device}/enable`, { method: 'POST', cookie, csrf: 'wrong', body: {} })).status).toBe(403)
  await w.restartNode(0)
  expect((await api(w, 0)('/dashboard/api/session', { cookie })).status).toBe(200)
  await w.operator.apiKeys.revoke(key.name, 'operator:test')
  for (let i = 0; i < 3; i++) {
    const refused = await api(w, i)('/dashboard/api/session', { cookie })
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { code: string }).code).toBe('GH_DASHBOARD_SESSION')
  }
}

describe.runIf(redisAvailable())('the API of three nodes on one Redis and one SQLite file (issue 13)', () => {
  let w: ClusterWorld
  beforeAll(async () => {
    w = await startClusterWorld({ httpRateLimit: { ratePerSecond: 0.01, burst: 5 }, claimRequestRate: { ratePerSecond: 0.01, burst: 3 } })
  }, 60_000)
  afterAll(async () => {
    await w?.close()
  })

  it('serves a dashboard session signed in on node A on B and C, keeps it over a restart of A, and ends it on every node when its key is revoked', async () => {
    await sessionAcrossNodes(w)
  })

  it("gives a key its limit across the nodes (5, not 5 per node), and drops the key's bucket when it is revoked", async () => {
    const { token, key } = await w.operator.apiKeys.create({ name: 'reader', scopes: ['devices:read'] }, 'operator:test')
    const admin = (await w.operator.apiKeys.create({ name: 'admin', scopes: ['apikeys:admin', 'devices:read'] }, 'operator:test')).token
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await api(w, i % 2)('/v1/devices', { bearer: token })).status)
    expect(statuses.filter((s) => s === 200)).toHaveLength(5)
    expect(statuses.filter((s) => s === 429)).toHaveLength(1)
    const limited = await api(w, 2)('/v1/devices', { bearer: token })
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(1)
    const redis = new Redis(w.redis.url)
    try {
      const bucket = `gh:rate:api-key:${key.id}`
      expect(await redis.exists(bucket)).toBe(1)
      expect((await api(w, 2)('/v1/apikeys/reader/revoke', { method: 'POST', bearer: admin, body: {} })).status).toBe(200)
      expect(await redis.exists(bucket)).toBe(0)
    } finally {
      redis.disconnect()
    }
  })

  it('gives a claim its request rate across the nodes (3, not 3 per node): its sessions on A and B spend one bucket in Redis', async () => {
    const created = await w.operator.claims.create({ group: 'line-1', maxUses: 10 }, 'operator:test')
    const claim = {
      deviceId: `claim:${created.claim.id}`,
      cert: created.certificatePem,
      key: created.privateKeyPem,
      ca: created.chainPem,
      serial: created.claim.serial,
    }
    // a claim session on node A and one on node B (two devices of one production line), each with its nonce
    const sessions = await Promise.all(
      [0, 1].map(async (n) => {
        const nonce = `nonce-node${n}-aaaaaaaaaaaa`
        const port = (w.nodes[n] as ClusterWorld['nodes'][number]).mqtt.port
        const client = await connectDevice(port, claim, { clientId: `claim:${nonce}`, clean: true })
        const codes: string[] = []
        client.on('message', (_topic, payload) =>
          codes.push((JSON.parse(payload.toString()) as { error?: { code: string } }).error?.code ?? 'ok'),
        )
        await client.subscribeAsync(`provisioning/${nonce}/response`, { qos: 1 })
        return { client, nonce, codes }
      }),
    )
    // six requests, A and B in turn, each answered before the next: a CSR that is not one, so nothing is provisioned
    const answers: string[] = []
    for (let i = 0; i < 6; i++) {
      const s = sessions[i % 2] as (typeof sessions)[number]
      const before = s.codes.length
      await s.client.publishAsync(`provisioning/${s.nonce}/request`, JSON.stringify({ deviceId: `line-${i}`, csr: 'not a csr' }), {
        qos: 1,
      })
      await waitFor(() => s.codes.length > before, 5000, `the answer to request ${i}`)
      answers.push(s.codes[before] as string)
    }
    // the claim's burst of 3 for both nodes together: the three after it are over the rate, on either node
    expect(answers.slice(0, 3).every((code) => code !== 'GH_CLAIM_RATE_LIMITED')).toBe(true)
    expect(answers.slice(3)).toEqual(['GH_CLAIM_RATE_LIMITED', 'GH_CLAIM_RATE_LIMITED', 'GH_CLAIM_RATE_LIMITED'])
    const redis = new Redis(w.redis.url)
    try {
      expect(await redis.exists(`gh:rate:claim:${created.claim.id}`)).toBe(1)
    } finally {
      redis.disconnect()
    }
  })
})

describe.runIf(redisAvailable() && postgresAvailable())('the API of three nodes on one Redis and one PostgreSQL (issue 13)', () => {
  let server: PostgresServer
  let w: ClusterWorld
  beforeAll(async () => {
    server = await startPostgres()
    w = await startClusterWorld({ databaseUrl: await server.createDatabase('api_cluster') })
  }, 60_000)
  afterAll(async () => {
    await w?.close()
    await server?.stop()
  })

  it('serves a dashboard session signed in on node A on B and C, keeps it over a restart of A, and ends it on every node when its key is revoked', async () => {
    await sessionAcrossNodes(w)
  })
})
