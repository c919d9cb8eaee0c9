import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { afterAll, describe, expect, it } from 'vitest'
import { configSchema } from '../../../config.ts'
import '../../../provisioning/index.ts'
import {
  codeCache,
  declaredValidators,
  readPrebuilt,
  schemaValidator,
  standaloneModule,
  validatorHash,
  type DeclaredValidator,
} from '../../../certs/prebuilt-validators.ts'

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-validators-'))
// ajv's standalone code requires ajv's runtime helpers, found as from dist/validators/
symlinkSync(join(import.meta.dirname, '../../../node_modules'), join(dir, 'node_modules'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** What bin/build.js does for one validator: its standalone module in `dir`, and V8's code cache of it. */
function build(v: DeclaredValidator): void {
  writeFileSync(join(dir, `${v.name}.cjs`), standaloneModule(v))
  writeFileSync(join(dir, `${v.name}.v8`), codeCache(join(dir, `${v.name}.cjs`)))
}

const declared = (name: string) => {
  const v = declaredValidators().find((d) => d.name === name)
  if (!v) throw new Error(`no validator ${name}`)
  return v
}

/** Runs a validator on a copy of the input: whether it passed, the (defaulted) value and ajv's errors. */
function run(validate: (data: unknown) => boolean, input: unknown) {
  const data = structuredClone(input)
  const ok = validate(data)
  return { ok, data, errors: (validate as unknown as { errors: unknown }).errors ?? null }
}

describe('validators built at build time (certs/prebuilt-validators.ts)', () => {
  it('the configuration validator, built as standalone code, answers exactly as the one compiled at run time', () => {
    const v = declared('config')
    expect(v.schema).toBe(configSchema)
    build(v)
    const built = readPrebuilt(dir, 'config', v.hash)
    expect(built).toBeTypeOf('function')
    const compiled = new Ajv(v.options).compile(v.schema)
    for (const input of [
      {},
      { mqttPort: '8884', hostnames: 'a.example' },
      { mqttPort: 70_000, logLevel: 'loud', nope: 1 },
      { limits: { maxConnection: 1, packetRate: { burst: 0 } }, ai: { tiers: { x: { dailyRequests: -1 } } } },
      { cluster: { workers: 'many' }, crlBaseUrl: 'ftp://x' },
    ])
      expect(run(built!, input)).toEqual(run(compiled, input))
  })

  it('every declared validator builds, and a built one answers as the compiled one on an empty document', () => {
    expect(declaredValidators().map((v) => v.name)).toEqual(
      expect.arrayContaining(['config', 'limit-values', 'route-input', 'broker-limits', 'broker-options', 'broker-proxyProtocol']),
    )
    for (const v of declaredValidators()) {
      build(v)
      const built = readPrebuilt(dir, v.name, v.hash)
      expect(built, v.name).toBeTypeOf('function')
      expect(run(built!, {}), v.name).toEqual(run(new Ajv(v.options).compile(v.schema), {}))
    }
  })

  it('a built validator is used only for the schema and options it was built for: a stale one is compiled anew', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer', maximum: 5 } }, additionalProperties: false }
    const options = { allErrors: true, strict: true }
    const v = { name: 'stale-test', schema, options, hash: validatorHash(schema, options) }
    build(v)
    expect(readPrebuilt(dir, 'stale-test', v.hash)).toBeTypeOf('function')
    const changed = { ...schema, properties: { n: { type: 'integer', maximum: 9 } } }
    expect(validatorHash(changed, options)).not.toBe(v.hash)
    expect(readPrebuilt(dir, 'stale-test', validatorHash(changed, options))).toBeUndefined()
    expect(readPrebuilt(dir, 'stale-test', validatorHash(schema, { ...options, useDefaults: true }))).toBeUndefined()
    expect(readPrebuilt(dir, 'never-built', v.hash)).toBeUndefined()
    // from the sources there is no validators/ beside certs/: compiled on first use, with the changed schema
    const validate = schemaValidator('stale-test-compiled', changed, options)()
    expect(validate({ n: 7 })).toBe(true)
  })

  it('a code cache is used only for the very module it was made from: an edited module of the same length runs as edited', () => {
    const options = { allErrors: true }
    const schema = (max: number) => ({ type: 'object', properties: { n: { type: 'integer', maximum: max } } })
    const five = { name: 'cache-test', schema: schema(5), options, hash: validatorHash(schema(5), options) }
    build(five)
    expect(run(readPrebuilt(dir, 'cache-test', five.hash)!, { n: 6 }).ok).toBe(false)
    // the module rebuilt for maximum 6, its .v8 left from the 5: V8 alone would take that cache (same length)
    const six = { ...five, schema: schema(6), hash: validatorHash(schema(6), options) }
    const source = standaloneModule(six)
    expect(source.length).toBe(readFileSync(join(dir, 'cache-test.cjs'), 'utf8').length)
    writeFileSync(join(dir, 'cache-test.cjs'), source)
    const built = readPrebuilt(dir, 'cache-test', six.hash)
    expect(built).toBeTypeOf('function')
    expect(run(built!, { n: 6 }).ok).toBe(true)
    expect(run(built!, { n: 7 }).ok).toBe(false)
  })

  it('one name is one schema', () => {
    schemaValidator('one-name', { type: 'string' }, {})
    expect(() => schemaValidator('one-name', { type: 'number' }, {})).toThrow(/two schema validators are named one-name/)
  })
})
