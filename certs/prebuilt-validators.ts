import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import type { Ajv, Options, ValidateFunction } from 'ajv'

/**
 * JSON Schema validators compiled at build time. Compiling a schema with ajv costs a CLI call most of its
 * time (the configuration's alone ~300 ms), so `npm run build` (bin/build.js) writes each declared
 * validator as ajv's standalone code to dist/validators/<name>.cjs, stamped with a hash of its schema and
 * options. At run time a validator is taken from there only when its stamp matches the schema in the
 * running code; otherwise (the TypeScript sources through tsx and tests: there is no validators/ beside
 * them; or a stale file) it is compiled on first use, as before. Either way the errors are ajv's own, the
 * same code. Beside each the build writes V8's code cache of it (<name>.v8, after one run), so a CLI call does
 * not compile the validator's code either (the configuration's: ~20 ms of CPU); a cache V8 refuses (another
 * Node.js) or one not made from this very file is not used.
 */
export interface DeclaredValidator {
  name: string
  schema: object
  options: Options
  hash: string
}

const declared = new Map<string, DeclaredValidator>()
const load = createRequire(import.meta.url)
// beside the compiled code only: dist/certs/prebuilt-validators.js -> dist/validators/
const BUILT = fileURLToPath(new URL('../validators/', import.meta.url))
// ajv instances for the compile-on-use fallback, one per set of options (each compiles ajv's meta-schema once)
const compilers = new Map<string, Ajv>()

/** The stamp of a schema with its ajv options: a validator built for anything else is not used. */
export function validatorHash(schema: object, options: Options): string {
  return createHash('sha256')
    .update(JSON.stringify([schema, options]))
    .digest('hex')
}

/**
 * A validator for `schema`, by a name unique in the program; nothing is compiled or loaded until the
 * first call of the returned function. `options` must be plain JSON (they are part of the stamp).
 */
export function schemaValidator<T = unknown>(name: string, schema: object, options: Options): () => ValidateFunction<T> {
  const hash = validatorHash(schema, options)
  const other = declared.get(name)
  if (other && other.hash !== hash) throw new Error(`two schema validators are named ${name}`)
  declared.set(name, { name, schema, options, hash })
  let validate: ValidateFunction<T> | undefined
  return () => (validate ??= readPrebuilt<T>(BUILT, name, hash) ?? compile<T>(schema, options))
}

/** Every validator declared by the modules loaded so far (bin/build.js writes them). */
export function declaredValidators(): DeclaredValidator[] {
  return [...declared.values()]
}

/** A declared validator as a CommonJS module: ajv's standalone code, stamped with the hash (bin/build.js). */
export function standaloneModule(v: DeclaredValidator): string {
  const { Ajv } = load('ajv') as typeof import('ajv')
  const standaloneCode = load('ajv/dist/standalone').default as typeof import('ajv/dist/standalone/index.js').default
  const ajv = new Ajv({ ...v.options, code: { ...v.options.code, source: true } })
  return `${standaloneCode(ajv, ajv.compile(v.schema))}\nmodule.exports.schemaHash = ${JSON.stringify(v.hash)};\n`
}

/** The validator built into `dir` for this name, when it was built for exactly this hash. */
export function readPrebuilt<T>(dir: string, name: string, hash: string): ValidateFunction<T> | undefined {
  const file = join(dir, `${name}.cjs`)
  if (!existsSync(file)) return undefined
  const mod = runBuilt(file, true).exports as ValidateFunction<T> & { schemaHash?: string }
  return mod.schemaHash === hash ? mod : undefined
}

/**
 * V8's code cache of a built validator module (bin/build.js writes it as <name>.v8): the module is run and
 * its validator called once, so the cache holds the compiled validator too; it starts with the SHA-256 of the
 * module's source, which readPrebuilt checks (V8 itself checks only the source's length).
 */
export function codeCache(file: string): Buffer {
  const { exports, script, digest } = runBuilt(file, false)
  ;(exports as (data: unknown) => boolean)({})
  return Buffer.concat([digest, script.createCachedData()])
}

/** Runs a built CommonJS module as require would, with its code cache when `cached` and one was made from it. */
function runBuilt(file: string, cached: boolean): { exports: unknown; script: Script; digest: Buffer } {
  const source = readFileSync(file, 'utf8')
  const digest = createHash('sha256').update(source).digest()
  const cache = cached ? readCache(file.replace(/\.cjs$/, '.v8')) : undefined
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cache?.subarray(0, digest.length).equals(digest) && { cachedData: cache.subarray(digest.length) }),
  })
  const module = { exports: {} as unknown }
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file))
  return { exports: module.exports, script, digest }
}

function readCache(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

function compile<T>(schema: object, options: Options): ValidateFunction<T> {
  const key = JSON.stringify(options)
  const ajv = compilers.get(key) ?? newAjv(options)
  compilers.set(key, ajv)
  return ajv.compile<T>(schema)
}

/**
 * An ajv instance, for schemas known only at run time (a group's settings schema). ajv is loaded by
 * this call, not when a module imports it: a CLI call that compiles no schema never loads ajv (~50 ms).
 */
export function newAjv(options: Options): Ajv {
  return new (load('ajv') as typeof import('ajv')).Ajv(options)
}
