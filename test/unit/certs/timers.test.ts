import { systemTimers } from '../../../certs/timers.ts'
import { timersContract } from '../../contract/timers.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { fakeTimers } from '../../helpers/fake-timers.ts'

timersContract('systemTimers', () => ({
  timers: systemTimers,
  now: () => performance.now(),
  runUntil: async (fired) => void (await fired),
}))

timersContract('fakeTimers on a fixed clock', () => {
  const clock = fixedClock()
  const timers = fakeTimers(clock)
  return {
    timers,
    now: () => clock.now().getTime(),
    async runUntil(fired, ms) {
      await timers.advance(ms)
      await fired
    },
  }
})
