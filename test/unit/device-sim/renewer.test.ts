import { describe, expect, it } from 'vitest'
import { cryptoRandom, generateKeyPair, issueDeviceCertificateDer } from '../../../certs/index.ts'
import type { DeviceBundle } from '../../../device-sim/index.ts'
import { createRenewer, renewalWindowOpens } from '../../../device-sim/renewer.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'

const DAY = 86_400_000

async function bundleValidFor(days: number, clock = fixedClock('2026-01-01T00:00:00Z')): Promise<DeviceBundle> {
  const ca = await makeTestCa({ clock })
  const keys = await generateKeyPair('p256')
  const cert = await issueDeviceCertificateDer(
    ca.issuing,
    { deviceId: 'd-1', publicKey: keys.publicKey, validDays: days },
    { clock, random: cryptoRandom },
  )
  return { deviceId: 'd-1', cert: cert.pem, key: '', ca: '' }
}

function renewerFor(
  bundle: DeviceBundle,
  clock: ReturnType<typeof fixedClock>,
  options: { enabled?: boolean; renewalWindow?: number } = {},
) {
  const timers = fakeTimers(clock)
  const attempts: Date[] = []
  const errors: string[] = []
  const renewer = createRenewer(
    {
      deviceId: 'd-1',
      bundle: () => bundle,
      session: () => {
        attempts.push(clock.now())
        return null // offline: the attempt waits for the next connection
      },
      switchTo: async () => true,
      isRunning: () => true,
      clock,
      timers,
      random: () => 0.5,
      onRenewed: () => {},
      onError: (code) => errors.push(code),
    },
    { enabled: options.enabled ?? true, ...(options.renewalWindow !== undefined && { renewalWindow: options.renewalWindow }) },
  )
  return { renewer, timers, attempts, errors }
}

describe('device-sim renewer (when a device asks for a new certificate)', () => {
  it('finds the renewal window: the last third of the validity by default', async () => {
    const bundle = await bundleValidFor(90)
    const opens = renewalWindowOpens(bundle.cert)
    const notAfter = new Date('2026-01-01T00:00:00Z').getTime() - 60_000 + 90 * DAY // backdated one minute
    expect(Math.abs(opens.getTime() - (notAfter - 30 * DAY))).toBeLessThan(2 * 60_000)
    expect(renewalWindowOpens(bundle.cert, 0.5).getTime()).toBeLessThan(opens.getTime())
  })

  it('asks once the window opens, waiting in steps of at most a day (timers stay bounded)', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const bundle = await bundleValidFor(90, clock)
    const { renewer, timers, attempts, errors } = renewerFor(bundle, clock)
    renewer.schedule()
    expect(timers.pendingDelays()).toEqual([DAY])
    await timers.advance('59d')
    expect(attempts).toEqual([])
    await timers.advance('2d')
    expect(attempts).toHaveLength(1)
    expect(attempts[0]!.getTime()).toBeGreaterThanOrEqual(renewalWindowOpens(bundle.cert).getTime())
    expect(attempts[0]!.getTime() - renewalWindowOpens(bundle.cert).getTime()).toBeLessThan(1000)
    expect(errors).toEqual([]) // offline is not an error: it asks again once connected (schedule on connect)
    renewer.stop()
    expect(timers.pending()).toBe(0)
  })

  it('renewNow reports that it is offline instead of waiting', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const { renewer } = renewerFor(await bundleValidFor(90, clock), clock)
    expect(await renewer.renewNow()).toMatchObject({ ok: false, code: 'GH_SIM_NOT_CONNECTED' })
  })

  it('schedules nothing when renewal is off, and refuses a window outside (0, 1]', async () => {
    const clock = fixedClock('2026-01-01T00:00:00Z')
    const bundle = await bundleValidFor(90, clock)
    const { renewer, timers } = renewerFor(bundle, clock, { enabled: false })
    renewer.schedule()
    expect(timers.pending()).toBe(0)
    expect(() => renewerFor(bundle, clock, { renewalWindow: 0 })).toThrow(RangeError)
    expect(() => renewerFor(bundle, clock, { renewalWindow: 1.5 })).toThrow(RangeError)
  })
})
