import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { cryptoRandom } from '../../../certs/index.ts'
import { createDeviceAuthority } from '../../../provisioning/authority/device-authority.ts'
import { createSettingsCipher } from '../../../provisioning/settings/secrets.ts'
import { createSettingsService } from '../../../provisioning/settings/settings-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { assignmentsToPatch } from '../../../provisioning/cli/settings.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { makeTestCa } from '../../helpers/test-ca.ts'
import { capturedLog } from './api/api-harness.ts'

async function setup(limits: { maxSchemaBytes?: number } = {}) {
  const clock = fixedClock('2026-03-01T00:00:00Z')
  const store = new SqliteRegistryStore(':memory:')
  const { log, text } = capturedLog()
  const authority = createDeviceAuthority({ store, ca: await makeTestCa(), clock, random: cryptoRandom, log: pino({ level: 'silent' }) })
  const cipher = createSettingsCipher(new Uint8Array(32).fill(7), cryptoRandom)
  const settings = createSettingsService({ store, settings: store.settings, cipher, clock, log }, limits)
  await authority.createDevice({ id: 'p1', group: 'pumps' }, 'op')
  return { clock, store, settings, logText: text }
}

const codeOf = async (fn: () => unknown): Promise<string | undefined> => {
  try {
    await fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('group JSON Schemas are untrusted input', () => {
  it('answers the catastrophic pattern ^(a|a)*$ on 41 characters (patterns run on RE2, linear time)', async () => {
    const { settings } = await setup()
    await settings.setSchema(
      'pumps',
      {
        type: 'object',
        properties: { name: { type: 'string', pattern: '^(a|a)*$' } },
        patternProperties: { '^(b|b)*$': { type: 'number' } },
      },
      'op',
    )
    const group = { kind: 'group', group: 'pumps' } as const
    expect(await codeOf(async () => await settings.patchLayer(group, { name: `${'a'.repeat(40)}!` }, { actor: 'op' }))).toBe(
      'GH_SETTINGS_SCHEMA',
    )
    expect(
      await codeOf(
        async () =>
          await settings.patchLayer(group, { [`${'b'.repeat(40)}!`]: 'x', [`${'b'.repeat(40)}`]: 'not a number' }, { actor: 'op' }),
      ),
    ).toBe('GH_SETTINGS_SCHEMA')
    expect((await settings.patchLayer(group, { name: 'a'.repeat(40), [`${'b'.repeat(40)}`]: 1 }, { actor: 'op' })).revision).toBe(1)
  })

  it.each([
    ['a backreference', '^(a)\\1$'],
    ['a lookahead', '^a(?=b)'],
    ['a lookbehind', '(?<!x)a'],
  ])('refuses a pattern with %s with GH_SETTINGS_PATTERN_UNSUPPORTED, and keeps the schema it had', async (_name, pattern) => {
    const { settings } = await setup()
    await settings.setSchema('pumps', { type: 'object' }, 'op')
    expect(
      await codeOf(async () => await settings.setSchema('pumps', { type: 'object', properties: { s: { type: 'string', pattern } } }, 'op')),
    ).toBe('GH_SETTINGS_PATTERN_UNSUPPORTED')
    expect(
      await codeOf(
        async () => await settings.setSchema('pumps', { type: 'object', patternProperties: { [pattern]: { type: 'string' } } }, 'op'),
      ),
    ).toBe('GH_SETTINGS_PATTERN_UNSUPPORTED')
    expect(await settings.getSchema('pumps')).toEqual({ type: 'object' })
  })

  it('still reads ordinary JavaScript pattern syntax (classes, escapes, named groups)', async () => {
    const { settings } = await setup()
    await settings.setSchema(
      'pumps',
      { type: 'object', properties: { mac: { type: 'string', pattern: '^(?<oui>[0-9A-F]{2}(:[0-9A-F]{2}){2})\\d*$' } } },
      'op',
    )
    const group = { kind: 'group', group: 'pumps' } as const
    expect((await settings.patchLayer(group, { mac: 'AB:CD:EF12' }, { actor: 'op' })).revision).toBe(1)
    expect(await codeOf(async () => await settings.patchLayer(group, { mac: 'ab:cd:ef' }, { actor: 'op' }))).toBe('GH_SETTINGS_SCHEMA')
  })

  it('refuses a schema over maxSchemaBytes with GH_SETTINGS_SCHEMA_TOO_LARGE, and keeps the schema it had', async () => {
    const { settings } = await setup({ maxSchemaBytes: 4096 })
    await settings.setSchema('pumps', { type: 'object' }, 'op')
    const big = { type: 'object', description: 'x'.repeat(4096) }
    expect(await codeOf(async () => await settings.setSchema('pumps', big, 'op'))).toBe('GH_SETTINGS_SCHEMA_TOO_LARGE')
    expect(await settings.getSchema('pumps')).toEqual({ type: 'object' })
  })

  it('keeps a bounded number of compiled validators after 100 distinct schema PUTs, 3x its bound (replaced ones are freed)', async () => {
    const { settings } = await setup()
    const group = { kind: 'group', group: 'pumps' } as const
    for (let i = 0; i < 100; i++) {
      await settings.setSchema(
        i % 2 ? 'pumps' : `g-${i}`,
        { type: 'object', properties: { [`k${i}`]: { type: 'number', maximum: i } } },
        'op',
      )
      await settings.patchLayer(group, { [`k${i}`]: i }, { actor: 'op' })
    }
    expect(settings.compiledSchemas()).toBeLessThanOrEqual(32)
    expect(settings.compiledSchemas()).toBeGreaterThan(0)
    // the cache is a cache: the latest schema of each group is still enforced
    expect(await codeOf(async () => await settings.patchLayer(group, { k99: 100 }, { actor: 'op' }))).toBe('GH_SETTINGS_SCHEMA')
  })
})

describe('nothing a device sends is taken as sealed', () => {
  it('refuses a report that plants {"$enc": ...}, and the device view still answers', async () => {
    const { settings } = await setup()
    expect(await codeOf(async () => await settings.report('p1', { version: 1, settings: { wifi_secret: { $enc: 'v1:AAAA' } } }))).toBe(
      'GH_SETTINGS_INVALID',
    )
    expect(await codeOf(async () => await settings.report('p1', { version: 1, settings: { note: { $enc: 'v1:AAAA' } } }))).toBe(
      'GH_SETTINGS_INVALID',
    )
    await settings.report('p1', { version: 1, settings: { wifi_secret: { nested: 'clear' }, rate: 1 } })
    expect((await settings.getDevice('p1')).reported).toMatchObject({ settings: { wifi_secret: '[secret]', rate: 1 } })
  })

  it('shows a stored value that does not decrypt as [secret] with a throttled warning, never an error for the whole view', async () => {
    const { settings, store, logText } = await setup()
    await settings.deliverable('p1') // writes its version row
    const record = (await store.settings.getDeviceSettings('p1'))!
    // what an older Gatehouse stored from a hostile report
    await store.settings.putDeviceSettings({
      ...record,
      reported: { wifi_secret: { $enc: 'v1:AAAA' }, rate: 2 },
      reportedVersion: 1,
      reportedAt: new Date(),
    })
    for (let i = 0; i < 5; i++)
      expect((await settings.getDevice('p1')).reported).toMatchObject({ settings: { wifi_secret: '[secret]', rate: 2 } })
    const warnings = logText()
      .split('\n')
      .filter((l) => l.includes('does not decrypt'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('"deviceId":"p1"')
    expect(warnings[0]).not.toContain('AAAA')
  })
})

describe('prototype keys are refused wherever a dotted key or a patch is merged', () => {
  afterEach(async () => {
    for (const k of ['x', 'polluted']) delete (Object.prototype as Record<string, unknown>)[k]
  })

  it.each(['__proto__.x=1', 'constructor.prototype.x=1', 'a.prototype=1', '__proto__=1'])(
    'settings set %s: GH_SETTINGS_INVALID, Object.prototype untouched',
    async (pair) => {
      expect(await codeOf(() => assignmentsToPatch([pair]))).toBe('GH_SETTINGS_INVALID')
      expect(({} as Record<string, unknown>).x).toBeUndefined()
      expect(await codeOf(() => assignmentsToPatch([pair.split('=')[0]!], true))).toBe('GH_SETTINGS_INVALID')
    },
  )

  it('refuses __proto__, constructor and prototype keys in patches and reports (JSON bodies have them as own keys)', async () => {
    const { settings } = await setup()
    for (const body of ['{"__proto__": {"polluted": 1}}', '{"a": {"constructor": {"prototype": {"polluted": 1}}}}', '{"prototype": 1}']) {
      expect(await codeOf(async () => await settings.patchLayer({ kind: 'fleet' }, JSON.parse(body), { actor: 'op' }))).toBe(
        'GH_SETTINGS_INVALID',
      )
      expect(await codeOf(async () => await settings.patchDevice('p1', JSON.parse(body), { actor: 'op' }))).toBe('GH_SETTINGS_INVALID')
      expect(await codeOf(async () => await settings.report('p1', { version: 1, settings: JSON.parse(body) }))).toBe('GH_SETTINGS_INVALID')
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect((await settings.getLayer({ kind: 'fleet' })).revision).toBe(0)
  })
})

describe('refusals do not echo untrusted input whole', () => {
  it('names a refused key path in at most ~128 characters, marked as cut', async () => {
    const { settings } = await setup()
    const longKey = 'k'.repeat(60_000)
    let message = ''
    try {
      await settings.report('p1', { version: 1, settings: { [longKey]: { $enc: 'x' } } })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toContain('[cut ')
    expect(message.length).toBeLessThan(600)
  })

  it('lists at most 10 schema violations, each path cut', async () => {
    const { settings } = await setup()
    await settings.setSchema('pumps', { type: 'object', additionalProperties: { type: 'number' } }, 'op')
    const patch = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${i}-${'k'.repeat(1000)}`, 'not a number']))
    let message = ''
    try {
      await settings.patchLayer({ kind: 'group', group: 'pumps' }, patch, { actor: 'op' })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toContain('and 40 more')
    expect(message.length).toBeLessThan(3000)
  })
})
