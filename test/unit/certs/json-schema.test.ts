import { Ajv } from 'ajv'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { deepFreeze, describeSchemaErrors, type FromSchema } from '../../../certs/index.ts'

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string' },
    port: { type: 'integer', minimum: 1, default: 80 },
    mode: { type: 'string', enum: ['a', 'b'], default: 'a' },
    tags: { type: 'array', items: { type: 'string' } },
    bucket: {
      type: 'object',
      additionalProperties: false,
      properties: { rate: { type: 'number', default: 1 }, note: { type: 'string' } },
      default: {},
    },
    routes: { type: 'object', additionalProperties: { type: 'object', properties: { to: { type: 'string', default: 'x' } } } },
    free: { type: 'object' },
  },
} as const

describe('FromSchema', () => {
  it('resolved: a key with a default or in required is present; the rest optional', () => {
    expectTypeOf<FromSchema<typeof schema>>().toEqualTypeOf<{
      name: string
      port: number
      mode: 'a' | 'b'
      tags?: string[]
      bucket: { rate: number; note?: string }
      routes?: Record<string, { to: string }>
      free?: Record<string, unknown>
    }>()
  })

  it('input: only required keys, at every depth', () => {
    expectTypeOf<FromSchema<typeof schema, 'input'>>().toEqualTypeOf<{
      name: string
      port?: number
      mode?: 'a' | 'b'
      tags?: string[]
      bucket?: { rate?: number; note?: string }
      routes?: Record<string, { to?: string }>
      free?: Record<string, unknown>
    }>()
  })

  it('matches what ajv with useDefaults produces', () => {
    const doc: Record<string, unknown> = { name: 'n', routes: { r: {} } }
    expect(new Ajv({ useDefaults: true, strict: true }).compile(schema)(doc)).toBe(true)
    expect(doc).toEqual({ name: 'n', port: 80, mode: 'a', bucket: { rate: 1 }, routes: { r: { to: 'x' } } })
  })
})

describe('describeSchemaErrors', () => {
  it('one line per problem, dotted paths, unknown keys by name, a label per path', () => {
    const validate = new Ajv({ allErrors: true, strict: true }).compile(schema)
    expect(validate({ name: 'n', port: 0, bucket: { rat: 1 } })).toBe(false)
    const label = (path: string) => (path === '/port' ? ' (from PORT)' : '')
    expect(describeSchemaErrors(validate.errors ?? [], 'doc', label)).toEqual(['port must be >= 1 (from PORT)', 'unknown key "bucket.rat"'])
    expect(validate('x')).toBe(false)
    expect(describeSchemaErrors(validate.errors ?? [], 'doc')).toEqual(['doc must be object'])
  })
})

describe('deepFreeze', () => {
  it('freezes nested objects and arrays', () => {
    const o = deepFreeze({ a: { b: [1] } })
    expect(Object.isFrozen(o.a.b)).toBe(true)
  })
})
