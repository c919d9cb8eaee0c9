import { createServer } from 'node:net'
import { beforeAll, describe, expect, it } from 'vitest'
import { probeListener } from '../../../broker/listener-probe.ts'
import { startBroker } from '../../helpers/broker-harness.ts'
import { makeBrokerPki, type BrokerPki } from '../../helpers/broker-pki.ts'
import { attemptConnect } from '../../helpers/mqtt-clients.ts'
import { waitFor } from '../../helpers/wait.ts'

let pki: BrokerPki

beforeAll(async () => {
  pki = await makeBrokerPki('Probe Test')
})

describe('broker.acceptsConnections (readiness)', () => {
  it('passes while listening, and its probes are not logged as TLS refusals', async () => {
    const h = await startBroker(pki.serverTls)
    for (let i = 0; i < 3; i++) await h.broker.acceptsConnections()
    // the marker: a client without a certificate, refused after the probes. A probe logged as a refusal
    // would be a record before the marker's (a probe that hung up has no address: its own throttle key).
    await attemptConnect(h.port, { ca: pki.chain, deviceId: 'pump-7' })
    const refused = await waitFor(() => h.logs.filter((r) => r.msg === 'TLS refused'), 5000, 'the marker refusal')
    expect(refused).toHaveLength(1)
    expect(refused[0]).toMatchObject({ remoteAddress: '127.0.0.1', suppressed: 0 })
    expect(refused[0]?.reason).not.toBe('ECONNRESET')
  })

  it('fails with GH_BROKER_STATE once the broker is closed', async () => {
    const h = await startBroker(pki.serverTls)
    await h.broker.close()
    await expect(h.broker.acceptsConnections()).rejects.toMatchObject({
      code: 'GH_BROKER_STATE',
      message: expect.stringContaining('closed'),
    })
  })

  it('probeListener fails with GH_BROKER_NOT_ACCEPTING when nothing listens on the port', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await expect(probeListener('127.0.0.1', port, 1000, () => {})).rejects.toMatchObject({
      code: 'GH_BROKER_NOT_ACCEPTING',
      message: expect.stringContaining('ECONNREFUSED'),
    })
  })
})
