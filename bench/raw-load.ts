import tls from 'node:tls'
import mqttPacket from 'mqtt-packet'
import { type DeviceBundle, secureContextOf } from '../device-sim/index.ts'

/**
 * A lighter load generator than mqtt.js (bench/cluster.ts, issue 13): each device is one mutual-TLS socket
 * that writes packets encoded once (CONNECT; QoS 1 PUBLISHes, one buffer per message id in flight, reused
 * after its PUBACK) and reads only the fixed headers of what comes back. No MQTT client state, no packet
 * objects, no timers per message: on 2 cores the generator's CPU is what the brokers do not get. Each TLS
 * connect is a full handshake (no session is offered for resumption), as a storm of new devices is.
 * Bounded: each connect by connectTimeoutMs, the storm by deadlineMs, the publish load by timeoutMs.
 */

export interface RawClient {
  deviceId: string
  socket: tls.TLSSocket
}

export interface RawFleet {
  connected: RawClient[]
  failed: number
  /** first connect start -> last connect settled */
  elapsedMs: number
  close(): void
}

export async function rawConnectFleet(
  devices: readonly DeviceBundle[],
  options: { port: number; concurrency: number; deadlineMs: number; connectTimeoutMs: number },
): Promise<RawFleet> {
  const deadline = performance.now() + options.deadlineMs
  const connected: RawClient[] = []
  let failed = 0
  let next = 0
  const started = performance.now()
  const lane = async () => {
    while (next < devices.length && performance.now() < deadline) {
      const device = devices[next++] as DeviceBundle
      const socket = await rawConnect(device, options.port, options.connectTimeoutMs)
      if (socket) connected.push({ deviceId: device.deviceId, socket })
      else failed++
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency, devices.length) }, lane))
  const elapsedMs = performance.now() - started
  return {
    connected,
    failed,
    elapsedMs,
    close: () => {
      for (const c of connected) c.socket.destroy()
    },
  }
}

/** Resolves with the socket once CONNACK 0 arrived, or null (socket destroyed) on anything else. */
function rawConnect(device: DeviceBundle, port: number, timeoutMs: number): Promise<tls.TLSSocket | null> {
  const connect = mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId: device.deviceId,
    keepalive: 60,
  })
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, secureContext: secureContextOf(device), rejectUnauthorized: true })
    socket.setNoDelay(true)
    let received: Buffer = Buffer.alloc(0)
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      socket.removeListener('close', onClose)
      if (!ok) socket.destroy()
      // later errors (a reset at close) are the load's business, never a crash
      socket.on('error', () => {})
      resolve(ok ? socket : null)
    }
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length < 4) return
      finish(received[0] === 0x20 && received[3] === 0)
    }
    const onClose = () => finish(false)
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', () => finish(false))
    socket.write(connect)
  })
}

/**
 * Closed-loop QoS 1 publishes to devices/{id}/telemetry: `window` in flight per client until `total` are
 * spread over the clients; resolves with the PUBACKs counted when all arrived or timeoutMs passed.
 */
export function rawPublishLoad(
  clients: readonly RawClient[],
  total: number,
  options: { size: number; window: number; timeoutMs: number; payload: (size: number) => Buffer },
): Promise<{ sent: number; completed: number }> {
  let sent = 0
  let completed = 0
  return new Promise((resolve) => {
    let lanes = clients.length
    const done = () => {
      clearTimeout(timer)
      for (const c of clients) c.socket.removeAllListeners('data')
      resolve({ sent, completed })
    }
    const timer = setTimeout(done, options.timeoutMs)
    if (lanes === 0) return done()
    clients.forEach(({ deviceId, socket }, i) => {
      const quota = Math.floor(total / clients.length) + (i < total % clients.length ? 1 : 0)
      const payload = options.payload(options.size)
      const window = Math.max(1, Math.min(options.window, 65_535))
      // one encoded PUBLISH per message id 1..window: a buffer is written again only after its PUBACK
      const packets = Array.from({ length: window }, (_, k) =>
        mqttPacket.generate({
          cmd: 'publish',
          topic: `devices/${deviceId}/telemetry`,
          payload,
          qos: 1,
          messageId: k + 1,
          retain: false,
          dup: false,
        }),
      )
      let started = 0
      let acked = 0
      let pending: Buffer = Buffer.alloc(0)
      const send = (id: number) => {
        if (started >= quota) return
        started++
        sent++
        socket.write(packets[id - 1] as Buffer)
      }
      const finishLane = () => {
        if (--lanes === 0) done()
      }
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
        let at = 0
        // fixed header: type byte, remaining length (1-4 bytes, 7 bits each); a PUBACK is 0x40 0x02 id id
        while (pending.length - at >= 2) {
          let length = 0
          let shift = 0
          let p = at + 1
          let byte: number
          do {
            byte = pending[p++] as number
            length |= (byte & 0x7f) << shift
            shift += 7
          } while (byte & 0x80 && p < pending.length)
          if (byte & 0x80 || pending.length < p + length) break
          if (pending[at] === 0x40 && length === 2) {
            completed++
            acked++
            send(pending.readUInt16BE(p))
            if (acked === quota) finishLane()
          }
          at = p + length
        }
        pending = at === pending.length ? Buffer.alloc(0) : pending.subarray(at)
      })
      socket.once('close', () => {
        if (acked < quota) finishLane()
      })
      if (quota === 0) {
        finishLane()
        return
      }
      for (let id = 1; id <= Math.min(window, quota); id++) send(id)
    })
  })
}
