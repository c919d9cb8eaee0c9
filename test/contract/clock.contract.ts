import { describe, expect, it } from 'vitest'
import type { Clock } from '../../certs/index.ts'

/** What code given a Clock may rely on: systemClock and test/helpers/clock.ts (fixedClock, offsetClock). */
export function clockContract(name: string, make: () => Clock): void {
  describe(`${name} (Clock contract)`, () => {
    it('tells a valid time, in a new Date each call: changing one moves no clock', () => {
      const clock = make()
      const first = clock.now()
      expect(Number.isNaN(first.getTime())).toBe(false)
      const before = first.getTime()
      first.setTime(0)
      expect(clock.now()).not.toBe(first)
      expect(clock.now().getTime()).toBeGreaterThanOrEqual(before)
    })

    it('never goes backwards on its own', () => {
      const clock = make()
      const times = Array.from({ length: 50 }, () => clock.now().getTime())
      expect(times).toEqual([...times].sort((a, b) => a - b))
    })
  })
}
