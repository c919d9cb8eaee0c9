import { describe, expect, it } from 'vitest'
import { deviceKey, enrollmentFixture } from '../../../helpers/enrollment-fixture.ts'

// Garbage on the provisioning and renewal topics (issue 17, "Bad input"): every payload is answered
// {ok: false, error: {code: GH_...}} and nothing is stored: no device, no certificate, no use of the claim.
// (A renewal takes its device id from the certificate, so a deviceId field is not its input.)

const bytes = (s: string | Buffer) => new Uint8Array(Buffer.from(s))
const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`

async function payloads(deviceId: string): Promise<[string, Uint8Array][]> {
  const csr = await (await deviceKey()).csr(deviceId)
  return [
    ['fail/empty', bytes('')],
    ['fail/not-json', bytes('hello')],
    ['fail/invalid-utf8', bytes(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
    ['fail/binary', bytes(Buffer.from([0, 1, 2, 3, 255]))],
    ['fail/truncated-json', bytes(JSON.stringify({ deviceId, csr }).slice(0, 100))],
    ['fail/json-nested-100000-deep', bytes(`{"deviceId":"${deviceId}","csr":${deep(100_000)}}`)],
    ['fail/array-bomb', bytes(`[${'['.repeat(100_000)}${']'.repeat(100_000)}]`)],
    ['fail/csr-a-number', bytes(JSON.stringify({ deviceId, csr: 1e308 }))],
    ['fail/csr-beyond-double', bytes(`{"deviceId":"${deviceId}","csr":1e400}`)],
    [
      'fail/csr-garbage',
      bytes(JSON.stringify({ deviceId, csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----' })),
    ],
    ['fail/csr-truncated', bytes(JSON.stringify({ deviceId, csr: csr.slice(0, 150) }))],
    ['fail/csr-oversized', bytes(JSON.stringify({ deviceId, csr: `${csr}${'A'.repeat(200_000)}` }))],
    ['fail/a-json-string', bytes(JSON.stringify(csr))],
    ['fail/null', bytes('null')],
  ]
}

describe('malformed enrollment payloads', () => {
  it('claim: each gets a coded refusal, and no device is made nor use consumed', async () => {
    const { createClaim, enrollment, context, store, claims } = await enrollmentFixture()
    const created = await createClaim({ maxUses: 5 })
    const csr = await (await deviceKey()).csr('pump-0001')
    const claimOnly: [string, Uint8Array][] = [['fail/device-id-a-number', bytes(JSON.stringify({ deviceId: 12345, csr }))]]
    for (const [name, payload] of [...(await payloads('pump-0001')), ...claimOnly]) {
      const answer = await enrollment.claim(context(created), payload)
      expect(answer, name).toMatchObject({ ok: false, error: { code: expect.stringMatching(/^GH_/), message: expect.any(String) } })
    }
    expect(await store.getDevice('pump-0001')).toBeUndefined()
    expect((await claims.get(created.claim.id))?.uses).toBe(0)
    expect(await store.listAudit({ action: 'device.created' })).toEqual([])
  })

  it('renewal: each gets a coded refusal, and the device keeps its one certificate', async () => {
    const { authority, enrollment, clock, store } = await enrollmentFixture()
    const issued = await authority.createDevice({ id: 'pump-1' }, 'operator:test')
    clock.advance('21d')
    const ctx = { deviceId: 'pump-1', serial: issued.serial, remoteAddress: '127.0.0.1' }
    for (const [name, payload] of await payloads('pump-1')) {
      const answer = await enrollment.renew(ctx, payload)
      expect(answer, name).toMatchObject({ ok: false, error: { code: expect.stringMatching(/^GH_/), message: expect.any(String) } })
    }
    expect(await store.listAudit({ action: 'device.renewed' })).toEqual([])
    expect((await store.listCertificates('pump-1')).map((c) => c.serial)).toEqual([issued.serial])
  })
})
