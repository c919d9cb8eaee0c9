// The attackers of `npm run bench -- abuse`, in a process of their own so that their CPU and event
// loop are not the well-behaved load generator's:
//   node --import tsx bench/abuse-attacker.ts   (says { ready }, then takes an AttackPlan over IPC and
//   answers { report: AttackReport })
// Three attacks run at once, each bounded by a count and by the plan's time cap, and each stops by
// itself; everything goes to 127.0.0.1.
import mqttPacket, { type Packet } from 'mqtt-packet'
import tls from 'node:tls'
import { secureContextOf, type DeviceBundle } from '../device-sim/index.ts'

export type Attack = 'subscribe' | 'refused' | 'schema'

export interface AttackPlan {
  /** which of the three run */
  attacks: Attack[]
  port: number
  httpUrl: string
  /** stop starting new work after this; every attack also has its own count cap below */
  seconds: number
  /** subscribe flood: one valid device, SUBSCRIBE + UNSUBSCRIBE + PINGREQ rounds */
  flooder: DeviceBundle
  subscribeRounds: number
  /** refused-connect flood: a revoked device's CONNECTs with a huge clientId, a few at a time */
  revoked: DeviceBundle
  refusedConnects: number
  refusedConcurrency: number
  clientIdBytes: number
  /** schema attack: an app key with settings:write */
  token: string
  group: string
  /** a device of `group`, whose settings the PATCHes validate against the group's schema */
  victimDeviceId: string
  schemaPuts: number
  schemaBytes: number
  /** PATCHes of a string of `redosLength` 'a's and one 'b' against `^(a|a)*$` */
  redosPatches: number
  redosLength: number
}

export interface AttackReport {
  /** null: not run in this phase */
  subscribeFlood: null | {
    rounds: number
    subacks: number
    unsubacks: number
    pingresps: number
    settingsMessages: number
    settingsBytes: number
    closedByBroker: boolean
    error: string | null
  }
  refusedConnectFlood: null | { attempts: number; connacks: Record<string, number>; closedWithoutConnack: number; errors: number }
  schemaAttack: null | {
    puts: number
    patches: number
    statuses: Record<string, number>
    codes: Record<string, number>
    maxRequestMs: number
  }
  attackerCpuMs: number
}

const SETTINGS_WINDOW = 200 // SUBSCRIBEs written before waiting for SUBACKs to catch up

function connectTls(device: DeviceBundle, port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, secureContext: secureContextOf(device) })
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** A raw MQTT 3.1.1 session over TLS: packets written as they are, every received packet counted. */
async function rawSession(device: DeviceBundle, port: number, clientId: string) {
  const socket = await connectTls(device, port)
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const listeners = new Set<(p: Packet) => void>()
  let closed = false
  const closedPromise = new Promise<void>((resolve) => socket.once('close', () => ((closed = true), resolve())))
  socket.on('error', () => {})
  socket.on('data', (b: Buffer) => parser.parse(b))
  parser.on('packet', (p: Packet) => {
    for (const l of listeners) l(p)
  })
  parser.on('error', () => socket.destroy())
  const write = (p: Packet) => (closed ? true : socket.write(mqttPacket.generate(p)))
  write({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60 })
  return { socket, listeners, write, closed: closedPromise, isClosed: () => closed }
}

function tally(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1
}

async function subscribeFlood(plan: AttackPlan, deadline: number): Promise<AttackReport['subscribeFlood']> {
  const r = {
    rounds: 0,
    subacks: 0,
    unsubacks: 0,
    pingresps: 0,
    settingsMessages: 0,
    settingsBytes: 0,
    closedByBroker: false,
    error: null as string | null,
  }
  const topic = `devices/${plan.flooder.deviceId}/settings`
  let session: Awaited<ReturnType<typeof rawSession>>
  try {
    session = await rawSession(plan.flooder, plan.port, plan.flooder.deviceId)
  } catch (err) {
    r.error = String((err as Error).message)
    return r
  }
  let wake: (() => void) | null = null
  session.listeners.add((p) => {
    if (p.cmd === 'suback') r.subacks++
    else if (p.cmd === 'unsuback') r.unsubacks++
    else if (p.cmd === 'pingresp') r.pingresps++
    else if (p.cmd === 'publish') {
      r.settingsMessages++
      r.settingsBytes += (p.payload as Buffer).length
      if (p.qos === 1 && p.messageId) session.write({ cmd: 'puback', messageId: p.messageId })
    }
    wake?.()
  })
  void session.closed.then(() => wake?.())
  const connack = await new Promise<boolean>((resolve) => {
    session.listeners.add((p) => p.cmd === 'connack' && resolve(p.returnCode === 0))
    void session.closed.then(() => resolve(false))
  })
  if (!connack) {
    r.error = 'the flooder was not accepted'
    session.socket.destroy()
    return r
  }
  let messageId = 0
  const nextId = () => (messageId = (messageId % 65_535) + 1)
  while (r.rounds < plan.subscribeRounds && performance.now() < deadline && !session.isClosed()) {
    session.write({ cmd: 'subscribe', messageId: nextId(), subscriptions: [{ topic, qos: 1 }] })
    session.write({ cmd: 'unsubscribe', messageId: nextId(), unsubscriptions: [topic] })
    const flushed = session.write({ cmd: 'pingreq' })
    r.rounds++
    // a tight loop, but one that lets the socket drain and the SUBACKs come back now and then
    if (!flushed || r.rounds - r.subacks >= SETTINGS_WINDOW) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          session.socket.off('drain', done)
          wake = null
          resolve()
        }
        const timer = setTimeout(done, 200)
        session.socket.once('drain', done)
        wake = done
      })
    }
  }
  // the answers to what was sent, until the deadline
  while (r.subacks < r.rounds && performance.now() < deadline && !session.isClosed()) {
    await new Promise<void>((resolve) => {
      wake = resolve
      setTimeout(resolve, 100)
    })
  }
  r.closedByBroker = session.isClosed()
  session.socket.destroy()
  return r
}

async function refusedConnectFlood(plan: AttackPlan, deadline: number): Promise<AttackReport['refusedConnectFlood']> {
  const r = { attempts: 0, connacks: {} as Record<string, number>, closedWithoutConnack: 0, errors: 0 }
  const clientId = 'x'.repeat(plan.clientIdBytes)
  const lane = async () => {
    while (r.attempts < plan.refusedConnects && performance.now() < deadline) {
      r.attempts++
      try {
        const s = await rawSession(plan.revoked, plan.port, clientId)
        const code = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), 5000)
          s.listeners.add((p) => p.cmd === 'connack' && (clearTimeout(timer), resolve(p.returnCode ?? 0)))
          void s.closed.then(() => (clearTimeout(timer), resolve(null)))
        })
        if (code === null) r.closedWithoutConnack++
        else tally(r.connacks, String(code))
        s.socket.destroy()
        await s.closed
      } catch {
        r.errors++
      }
    }
  }
  await Promise.all(Array.from({ length: plan.refusedConcurrency }, lane))
  return r
}

/** A JSON Schema of about `bytes`, different each time (`n`), whose string properties must match ^(a|a)*$. */
export function hostileSchema(bytes: number, n: number): Record<string, unknown> {
  const properties: Record<string, unknown> = { s: { type: 'string', pattern: '^(a|a)*$' } }
  let size = 200
  for (let i = 0; size < bytes; i++) {
    const name = `p${n}_${i}`
    properties[name] = { type: 'string', pattern: `^(a|a)*${i}$`, maxLength: 1000 + i, description: 'x'.repeat(64) }
    size += name.length + 110
  }
  return { type: 'object', $comment: `attack ${n}`, properties }
}

async function schemaAttack(plan: AttackPlan, deadline: number): Promise<AttackReport['schemaAttack']> {
  const r = { puts: 0, patches: 0, statuses: {} as Record<string, number>, codes: {} as Record<string, number>, maxRequestMs: 0 }
  const request = async (method: string, path: string, body: unknown, contentType: string): Promise<number> => {
    const started = performance.now()
    let status = 0
    try {
      const res = await fetch(`${plan.httpUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${plan.token}`, 'content-type': contentType },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      })
      status = res.status
      tally(r.statuses, String(res.status))
      const text = await res.text()
      if (!res.ok) tally(r.codes, (/"code":"(GH_[A-Z_]+)"/.exec(text)?.[1] as string | undefined) ?? 'none')
    } catch (err) {
      tally(r.statuses, (err as Error).name === 'TimeoutError' ? 'timeout' : 'error')
    }
    r.maxRequestMs = Math.max(r.maxRequestMs, performance.now() - started)
    return status
  }
  // Every other schema is small (~2 KB): one that a size bound alone does not stop, so its patterns are
  // compiled and the PATCHes below are validated against ^(a|a)*$.
  // two lanes: new schemas PUT one after another, and (once one is in place) PATCHes validated against it
  let schemaInPlace = false
  const puts = async () => {
    while (r.puts < plan.schemaPuts && performance.now() < deadline) {
      const bytes = r.puts % 2 === 0 ? plan.schemaBytes : 2_000
      const status = await request('PUT', `/v1/groups/${plan.group}/settings/schema`, hostileSchema(bytes, r.puts), 'application/json')
      r.puts++
      if (status >= 200 && status < 300) schemaInPlace = true
    }
  }
  const patches = async () => {
    while (!schemaInPlace && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    while (r.patches < plan.redosPatches && performance.now() < deadline) {
      await request(
        'PATCH',
        `/v1/devices/${plan.victimDeviceId}/settings`,
        { s: `${'a'.repeat(plan.redosLength)}b` },
        'application/merge-patch+json',
      )
      r.patches++
    }
  }
  await Promise.all([puts(), patches()])
  return r
}

process.once('message', async (plan: AttackPlan) => {
  const cpuBefore = process.cpuUsage()
  const deadline = performance.now() + plan.seconds * 1000
  try {
    const run = <T>(attack: Attack, fn: () => Promise<T>) => (plan.attacks.includes(attack) ? fn() : Promise.resolve(null))
    const [subscribe, refused, schema] = await Promise.all([
      run('subscribe', () => subscribeFlood(plan, deadline)),
      run('refused', () => refusedConnectFlood(plan, deadline)),
      run('schema', () => schemaAttack(plan, deadline)),
    ])
    const cpu = process.cpuUsage(cpuBefore)
    const report: AttackReport = {
      subscribeFlood: subscribe,
      refusedConnectFlood: refused,
      schemaAttack: schema,
      attackerCpuMs: (cpu.user + cpu.system) / 1000,
    }
    process.send?.({ report })
  } catch (err) {
    process.send?.({ error: String((err as Error).stack ?? err) })
  }
  process.exit(0)
})
process.send?.({ ready: true })
