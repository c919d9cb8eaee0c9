import net from 'node:net'
import { BrokerNotAccepting } from './errors.ts'

/** The address to reach a listener bound to `address` from this host: a wildcard becomes its family's loopback. */
export function loopbackFor(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1'
  if (address === '::') return '::1'
  return address
}

/**
 * Readiness: opens a TCP connection to host:port and closes it as soon as it is accepted. Before closing,
 * it hands its local port to `accepted`, so the listener can tell this probe from a device that hung up
 * before its TLS handshake. Rejects with GH_BROKER_NOT_ACCEPTING (refused, unreachable, or no answer
 * within timeoutMs).
 */
export function probeListener(host: string, port: number, timeoutMs: number, accepted: (localPort: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true })
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })))
    socket.once('connect', () => {
      if (socket.localPort !== undefined) accepted(socket.localPort)
      socket.destroy()
      resolve()
    })
    socket.once('error', (err: NodeJS.ErrnoException) => reject(new BrokerNotAccepting(port, err.code ?? err.message, { cause: err })))
  })
}
