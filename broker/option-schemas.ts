import { describeSchemaErrors, schemaValidator } from '../certs/index.ts'

// The broker's option schemas (limits, PROXY protocol, AI bridge): strict, every problem, defaults filled; without
// the code optimisation passes, which cost more than the few validations of a process save (a CLI call).
const AJV_OPTIONS = { allErrors: true, useDefaults: true, strict: true, code: { optimize: false } }

/**
 * A function that fills `schema`'s defaults into a copy of its input and returns it typed as the
 * resolved options, or throws fail(every problem). The caller adds the rules that relate two keys.
 * Built by `npm run build` (certs/prebuilt-validators.ts), else compiled on first use: importing the broker's
 * options (config.ts, every CLI command) compiles nothing.
 */
export function optionsValidator<T>(schema: object, name: string, fail: (problems: string) => Error): (input: unknown) => T {
  const validator = schemaValidator<T>(`broker-${name}`, schema, AJV_OPTIONS)
  return (input) => {
    const validate = validator()
    const options = structuredClone(input)
    if (!validate(options)) throw fail(describeSchemaErrors(validate.errors ?? [], name).join('; '))
    return options
  }
}
