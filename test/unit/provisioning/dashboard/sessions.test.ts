import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { createSessionStore, tokensEqual } from '../../../../provisioning/dashboard/sessions.ts'
import { fixedClock } from '../../../helpers/clock.ts'

const key = { id: 'k1', name: 'ops-dash' }

function store(options = {}) {
  const clock = fixedClock()
  return { clock, sessions: createSessionStore({ clock, random: cryptoRandom }, options) }
}

describe('dashboard sessions', () => {
  it('gives each sign-in its own random id and CSRF token, and finds the session by its id only', () => {
    const { sessions } = store()
    const a = sessions.create(key)
    const b = sessions.create(key)
    expect(a.id).not.toBe(b.id)
    expect(a.session.csrfToken).not.toBe(b.session.csrfToken)
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/) // 256 bits, base64url
    expect(sessions.get(a.id)).toBe(a.session)
    expect(sessions.get(`${a.id}x`)).toBeUndefined()
    expect(sessions.get(undefined)).toBeUndefined()
  })

  it('ends a session unused for idleMs, and keeps one in use', () => {
    const { sessions, clock } = store({ idleMs: 60_000 })
    const used = sessions.create(key)
    const idle = sessions.create(key)
    clock.advance('50s')
    expect(sessions.get(used.id)).toBeDefined()
    clock.advance('50s')
    expect(sessions.get(used.id)).toBeDefined()
    expect(sessions.get(idle.id)).toBeUndefined()
  })

  it('ends a session maxAgeMs after sign-in however much it is used', () => {
    const { sessions, clock } = store({ idleMs: 60_000, maxAgeMs: 120_000 })
    const s = sessions.create(key)
    for (let i = 0; i < 3; i++) {
      clock.advance('35s')
      expect(sessions.get(s.id)).toBeDefined()
    }
    clock.advance('15s') // 120 s after sign-in, 15 s after its last use
    expect(sessions.isLive(s.session)).toBe(false)
    expect(sessions.get(s.id)).toBeUndefined()
  })

  it('keeps at most maxSessions: a new sign-in ends the oldest', () => {
    const { sessions } = store({ maxSessions: 2 })
    const first = sessions.create(key)
    const second = sessions.create(key)
    const third = sessions.create(key)
    expect(sessions.size()).toBe(2)
    expect(sessions.get(first.id)).toBeUndefined()
    expect(sessions.get(second.id)).toBeDefined()
    expect(sessions.get(third.id)).toBeDefined()
  })

  it('signs out: a removed session is gone', () => {
    const { sessions } = store()
    const s = sessions.create(key)
    sessions.remove(s.id)
    expect(sessions.get(s.id)).toBeUndefined()
    expect(sessions.isLive(s.session)).toBe(false)
  })

  it.each([
    ['ok/equal', 'abc', 'abc', true],
    ['fail/different', 'abc', 'abd', false],
    ['fail/prefix', 'abc', 'ab', false],
    ['fail/empty', '', 'abc', false],
  ])('compares tokens: %s', (_name, a, b, equal) => {
    expect(tokensEqual(a, b)).toBe(equal)
  })
})
