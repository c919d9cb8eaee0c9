import { createRequire } from 'node:module'
import type { ValidateFunction } from 'ajv'
import type { RE2JS } from 're2js'
import { newAjv } from '../../certs/index.ts'
import { SettingsInvalid, SettingsPatternUnsupported, SettingsSchemaTooLarge } from '../errors.ts'
import { cut, digest, type JsonObject, shapeProblem } from './json-document.ts'
import { DEFAULT_SETTINGS_LIMITS } from './settings-limits.ts'

export interface SchemaValidatorLimits {
  /** largest serialised group JSON Schema, bytes */
  maxSchemaBytes?: number
  /** compiled validators kept (least recently used are dropped and compiled again when needed) */
  maxCompiled?: number
}

// re2js (~30 ms of CPU to load) loads when a schema's first pattern compiles, not with the control plane (issue 14)
let re2js: typeof import('re2js') | undefined
const load = createRequire(import.meta.url)

/** Deeper than any schema of settings needs (settings nest at most 16 levels; a schema takes about two per level). */
const MAX_SCHEMA_DEPTH = 64

/**
 * ajv's `pattern` / `patternProperties` / `propertyNames.pattern` on RE2 (re2js): matching is linear in
 * the input, so no schema an app sends can make validation backtrack. A pattern RE2 cannot express
 * (backreferences, lookaround) is refused when the schema is compiled.
 */
function re2RegExp(pattern: string): { test(s: string): boolean; toString(): string } {
  let re: RE2JS
  try {
    re2js ??= load('re2js') as typeof import('re2js')
    const { RE2JS } = re2js
    re = RE2JS.compile(RE2JS.translateRegExp(pattern))
  } catch (err) {
    throw new SettingsPatternUnsupported(cut(pattern), cut((err as Error).message, 200), { cause: err })
  }
  // ajv keys compiled patterns by toString(): keep it the pattern itself
  return { test: (s: string) => re.test(s), toString: () => pattern }
}
re2RegExp.code = 'gatehouseRe2RegExp' // only used by ajv's standalone code, which Gatehouse does not generate

/**
 * Compiled group schemas, keyed by the digest of the schema (not the group): each is compiled by its
 * own Ajv instance, so dropping a validator frees everything ajv kept for it. At most maxCompiled are
 * kept, least recently used first out; a replaced schema is never used again and ages out.
 */
export function createSchemaValidators(limits: SchemaValidatorLimits = {}) {
  const maxSchemaBytes = limits.maxSchemaBytes ?? DEFAULT_SETTINGS_LIMITS.maxSchemaBytes
  const maxCompiled = limits.maxCompiled ?? 32
  const compiled = new Map<string, ValidateFunction>()

  function compile(schema: JsonObject): ValidateFunction {
    const ajv = newAjv({ allErrors: true, strict: false, code: { regExp: re2RegExp } })
    return ajv.compile(schema)
  }

  return {
    /** Checks size and compiles (GH_SETTINGS_SCHEMA_TOO_LARGE, GH_SETTINGS_PATTERN_UNSUPPORTED, GH_SETTINGS_INVALID). */
    check(schema: JsonObject): void {
      // before any recursive walk (the digest, ajv): a schema 5,000 deep fits in 32 KiB and overflowed the stack
      const shape = shapeProblem(schema, MAX_SCHEMA_DEPTH)
      if (shape) throw new SettingsInvalid(`(schema) ${shape.path}`, shape.problem)
      const size = Buffer.byteLength(JSON.stringify(schema))
      if (size > maxSchemaBytes) throw new SettingsSchemaTooLarge(size, maxSchemaBytes)
      this.validatorFor(schema)
    },

    validatorFor(schema: JsonObject): ValidateFunction {
      const key = digest(schema)
      let validate = compiled.get(key)
      if (validate) {
        compiled.delete(key) // re-insert: most recently used last
      } else {
        try {
          validate = compile(schema)
        } catch (err) {
          if ((err as { code?: string }).code === 'GH_SETTINGS_PATTERN_UNSUPPORTED') throw err
          throw new SettingsInvalid('(schema)', (err as Error).message, { cause: err })
        }
      }
      compiled.set(key, validate)
      while (compiled.size > maxCompiled) compiled.delete(compiled.keys().next().value as string)
      return validate
    },

    /** How many compiled validators are kept (a bound, for tests and stats). */
    size: (): number => compiled.size,
  }
}
