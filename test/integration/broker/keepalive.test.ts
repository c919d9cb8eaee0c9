import { beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../../helpers/broker-harness.ts'
import { waitFor } from '../../helpers/wait.ts'
import { makeBrokerPki, type BrokerPki } from '../../helpers/broker-pki.ts'
import { connectDevice, rawTlsClient, requireMosquittoClients, runMosquitto } from '../../helpers/mqtt-clients.ts'

let pki: BrokerPki

beforeAll(async () => {
  requireMosquittoClients()
  pki = await makeBrokerPki()
})

/**
 * Issue 10: a keepalive outside limits.keepaliveSeconds used to be refused with CONNACK 5. MQTT 3.1.1
 * allows 0 (no keepalive); the broker clamps instead and keeps its own idle timer.
 */
describe('keepalive outside the bounds is clamped, not refused', () => {
  // mosquitto_sub 2.0 refuses to send -k 0 itself (5..65535): it gets the largest it will send
  it('mosquitto_sub -k 65535 (above the max) connects and receives its settings', async () => {
    const h = await startBroker(pki.serverTls)
    const dev = await pki.device('ka-mosq')
    h.directory.addCertificate('ka-mosq', dev.serial)
    let subscribed = false
    h.broker.onDeviceSubscribe((s) => void (subscribed ||= s.deviceId === 'ka-mosq'))
    const sub = runMosquitto('mosquitto_sub', h.port, dev, [
      '-k',
      '65535',
      '-t',
      'devices/ka-mosq/settings',
      '-q',
      '1',
      '-C',
      '1',
      '-W',
      '20',
    ])
    await waitFor(() => subscribed || sub.child.exitCode !== null, 15_000, 'mosquitto_sub to subscribe')
    expect(subscribed).toBe(true)
    await h.broker.publishToDevice('devices/ka-mosq/settings', '{"interval":30}', { qos: 1 })
    const { code, stdout } = await sub.exited
    expect(code).toBe(0)
    expect(stdout.trim()).toBe('{"interval":30}')
    expect(h.directory.auditsFor('connect.refused')).toEqual([])
  })

  it.each([
    ['0 (no keepalive)', 0],
    ['above the max', 3600],
  ])('mqtt.js with keepalive %s connects', async (_name, keepalive) => {
    const h = await startBroker(pki.serverTls, { limits: { keepaliveSeconds: { min: 5, max: 60 } } })
    const dev = await pki.device(`ka-${keepalive}`)
    h.directory.addCertificate(`ka-${keepalive}`, dev.serial)
    await connectDevice(h.port, dev, { keepalive })
    expect(h.broker.isConnected(`ka-${keepalive}`)).toBe(true)
    expect(h.directory.auditsFor('connect.refused')).toEqual([])
  })

  it('an idle raw client with keepalive 0 is accepted, then closed by the server after 1.5 x max', async () => {
    const h = await startBroker(pki.serverTls, { limits: { keepaliveSeconds: { min: 1, max: 1 } } })
    const dev = await pki.device('ka-idle')
    h.directory.addCertificate('ka-idle', dev.serial)
    const { client } = await rawTlsClient(h.port, dev)
    client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'ka-idle', clean: true, keepalive: 0 })
    expect(await client.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
    // it sends nothing more: the server's keepalive timer (1.5 s for max 1) closes it
    await client.closed
    await waitFor(() => !h.broker.isConnected('ka-idle'), 5000, 'session to end')
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'device disconnected', deviceId: 'ka-idle' }))
  })
})
