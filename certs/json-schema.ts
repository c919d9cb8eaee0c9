import type { ErrorObject } from 'ajv'

/**
 * The TypeScript type of a JSON Schema literal written `as const`, so an option shape is declared once
 * (types, ranges, defaults) and its type is derived (json-schema-to-ts' FromSchema, cut down to the
 * keywords Gatehouse's option schemas use: type, enum, items, properties, required, default,
 * additionalProperties as a schema).
 *
 * 'resolved' is the value after ajv's useDefaults: a key with a `default` or in `required` is present.
 * 'input' is what callers may pass: only `required` keys must be there, everywhere.
 */
export type FromSchema<S, M extends SchemaMode = 'resolved'> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly type: 'string' }
    ? string
    : S extends { readonly type: 'integer' | 'number' }
      ? number
      : S extends { readonly type: 'boolean' }
        ? boolean
        : S extends { readonly type: 'array'; readonly items: infer I }
          ? FromSchema<I, M>[]
          : S extends { readonly type: 'object'; readonly properties: infer P }
            ? ObjectOf<P, PresentKeys<S, P, M>, M>
            : S extends { readonly type: 'object'; readonly additionalProperties: infer A extends object }
              ? Record<string, FromSchema<A, M>>
              : S extends { readonly type: 'object' }
                ? Record<string, unknown>
                : unknown

export type SchemaMode = 'resolved' | 'input'

type RequiredOf<S> = S extends { readonly required: readonly (infer R)[] } ? R : never
type DefaultedOf<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P]
type PresentKeys<S, P, M> = RequiredOf<S> | (M extends 'resolved' ? DefaultedOf<P> : never)

type ObjectOf<P, Present, M extends SchemaMode> = Flatten<
  { -readonly [K in keyof P & Present]: FromSchema<P[K], M> } & { -readonly [K in Exclude<keyof P, Present>]?: FromSchema<P[K], M> }
>
type Flatten<T> = { [K in keyof T]: T[K] }

/**
 * ajv's errors as one line per problem, with dotted paths: `unknown key "limits.maxConnection"`,
 * `limits.packetRate.burst must be >= 1`. A bad key of a map is reported once, by its propertyNames
 * error. `name` labels an error of the whole document; `label` may add where a value came from.
 */
export function describeSchemaErrors(
  errors: readonly ErrorObject[],
  name: string,
  label: (instancePath: string) => string = () => '',
): string[] {
  return errors
    .filter((e) => !e.schemaPath.includes('/propertyNames/'))
    .map((e) => {
      const where = e.instancePath.replace(/^\//, '').replace(/\//g, '.')
      const from = label(e.instancePath)
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperty: string }).additionalProperty
        return `unknown key "${where ? `${where}.` : ''}${extra}"${from}`
      }
      if (e.keyword === 'propertyNames')
        return `${where} has an invalid key "${(e.params as { propertyName: string }).propertyName}"${from}`
      return `${where || name} ${e.message ?? 'is invalid'}${from}`
    })
}

interface DefaultsNode {
  default?: unknown
  properties?: Record<string, DefaultsNode>
}

/**
 * What a validator with `useDefaults` makes of `{}` for an object schema whose defaults sit on its properties
 * (each property's default, then its own properties' defaults within it), without loading a validator: for a
 * module's constant of defaults, since a module does no work at import (docs/conventions.md §2). A test pins it
 * to the validator's answer (DEFAULT_LIMITS: test/unit/broker/limits.test.ts).
 */
export function schemaDefaults<T>(schema: DefaultsNode, into: Record<string, unknown> = {}): T {
  for (const [key, node] of Object.entries(schema.properties ?? {})) {
    if (into[key] === undefined && node.default !== undefined) into[key] = structuredClone(node.default)
    const value = into[key]
    if (node.properties && value && typeof value === 'object') schemaDefaults(node, value as Record<string, unknown>)
  }
  return into as T
}

/** Resolved options are frozen all the way down. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
