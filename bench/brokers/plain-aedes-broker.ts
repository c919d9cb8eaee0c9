// The reference: plain aedes 1.2 behind Node's TLS server with the same TLS settings as Gatehouse
// (client certificate required and verified against the same CA chain, TLS >= 1.2, noDelay, the same
// server certificate and key), and nothing else: no registry, no hooks, no limits.
//   node --import tsx bench/brokers/plain-aedes-broker.ts <caFile> <certFile> <keyFile> [--consume]
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { Aedes } from 'aedes'
import { onCloseRequest, serveConsumer, type ChildMessage } from './ipc.ts'

const [caFile, certFile, keyFile] = process.argv.slice(2)
if (!caFile || !certFile || !keyFile) throw new Error('usage: plain-aedes-broker.ts <caFile> <certFile> <keyFile> [--consume]')

const aedes = new Aedes()
await aedes.listen()
const server = tls.createServer(
  {
    key: readFileSync(keyFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    ca: readFileSync(caFile, 'utf8'),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    noDelay: true,
  },
  (socket) => aedes.handle(socket),
)
server.on('tlsClientError', () => {})

if (process.argv.includes('--consume')) {
  const onPayload = serveConsumer()
  await new Promise<void>((resolve) =>
    aedes.subscribe(
      'devices/+/telemetry/#',
      (packet, done) => {
        onPayload(packet.payload as Buffer)
        done()
      },
      resolve,
    ),
  )
}

await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
onCloseRequest(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    aedes.close()
  })
})
process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port } satisfies ChildMessage)
