import { describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../../certs/index.ts'
import { createSessionStore, tokensEqual } from '../../../../provisioning/dashboard/sessions.ts'
import { InMemoryDashboardSessionStore } from '../../../../provisioning/store/in-memory-dashboard-session-store.ts'
import { fixedClock } from '../../../helpers/clock.ts'

const key = { id: 'k1', name: 'ops-dash' }

function store(options = {}) {
  const clock = fixedClock()
  return { clock, sessions: createSessionStore({ clock, random: cryptoRandom }, options) }
}

describe('dashboard sessions', () => {
  it('gives each sign-in its own random id and CSRF token, and finds the session by its id only', async () => {
    const { sessions } = store()
    const a = await sessions.create(key)
    const b = await sessions.create(key)
    expect(a.id).not.toBe(b.id)
    expect(a.session.csrfToken).not.toBe(b.session.csrfToken)
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/) // 256 bits, base64url
    expect(await sessions.get(a.id)).toMatchObject({ idHash: a.session.idHash, keyId: 'k1', csrfToken: a.session.csrfToken })
    expect(await sessions.get(`${a.id}x`)).toBeUndefined()
    expect(await sessions.get(undefined)).toBeUndefined()
  })

  it('ends a session unused for idleMs, and keeps one in use', async () => {
    const { sessions, clock } = store({ idleMs: 60_000 })
    const used = await sessions.create(key)
    const idle = await sessions.create(key)
    clock.advance('50s')
    expect(await sessions.get(used.id)).toBeDefined()
    clock.advance('50s')
    expect(await sessions.get(used.id)).toBeDefined()
    expect(await sessions.get(idle.id)).toBeUndefined()
    expect(await sessions.size()).toBe(1) // the lookup removed the expired one
  })

  it('ends a session maxAgeMs after sign-in however much it is used', async () => {
    const { sessions, clock } = store({ idleMs: 60_000, maxAgeMs: 120_000 })
    const s = await sessions.create(key)
    for (let i = 0; i < 3; i++) {
      clock.advance('35s')
      expect(await sessions.get(s.id)).toBeDefined()
    }
    clock.advance('15s') // 120 s after sign-in, 15 s after its last use
    expect(await sessions.isLive(s.session)).toBe(false)
    expect(await sessions.get(s.id)).toBeUndefined()
  })

  it('keeps at most maxSessions: a new sign-in ends the oldest', async () => {
    const { sessions } = store({ maxSessions: 2 })
    const first = await sessions.create(key)
    const second = await sessions.create(key)
    const third = await sessions.create(key)
    expect(await sessions.size()).toBe(2)
    expect(await sessions.get(first.id)).toBeUndefined()
    expect(await sessions.get(second.id)).toBeDefined()
    expect(await sessions.get(third.id)).toBeDefined()
  })

  it('signs out: a removed session is gone', async () => {
    const { sessions } = store()
    const s = await sessions.create(key)
    await sessions.remove(s.id)
    expect(await sessions.get(s.id)).toBeUndefined()
    expect(await sessions.isLive(s.session)).toBe(false)
  })

  it('serves a session signed in through one worker to another on the same store, with the same CSRF token; the store holds neither id nor token', async () => {
    const clock = fixedClock()
    const shared = new InMemoryDashboardSessionStore()
    const workerA = createSessionStore({ clock, random: cryptoRandom, store: shared })
    const workerB = createSessionStore({ clock, random: cryptoRandom, store: shared })
    const signedIn = await workerA.create(key)
    expect(await workerB.get(signedIn.id)).toMatchObject({ keyName: 'ops-dash', csrfToken: signedIn.session.csrfToken })
    const stored = await shared.get(signedIn.session.idHash)
    expect(JSON.stringify(stored)).not.toContain(signedIn.id)
    expect(JSON.stringify(stored)).not.toContain(signedIn.session.csrfToken)
    await workerB.remove(signedIn.id)
    expect(await workerA.get(signedIn.id)).toBeUndefined()
  })

  it('writes a use at most once per tenth of idleMs (60 s at most), not on every request', async () => {
    const clock = fixedClock()
    const shared = new InMemoryDashboardSessionStore()
    const touches: Date[] = []
    const touch = shared.touch.bind(shared)
    shared.touch = async (hash, at) => {
      touches.push(at)
      await touch(hash, at)
    }
    const sessions = createSessionStore({ clock, random: cryptoRandom, store: shared }, { idleMs: 100_000 })
    const s = await sessions.create(key)
    for (let i = 0; i < 30; i++) {
      clock.advance('1s')
      expect(await sessions.get(s.id)).toBeDefined()
    }
    expect(touches).toHaveLength(3) // at 10 s, 20 s and 30 s
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
