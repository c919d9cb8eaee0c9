import { Ajv } from 'ajv'
import { describeSchemaErrors } from '../certs/index.ts'

// One ajv for the broker's option schemas (limits, PROXY protocol, AI bridge): strict, every problem, defaults filled.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true })

/**
 * A function that fills `schema`'s defaults into a copy of its input and returns it typed as the
 * resolved options, or throws fail(every problem). The caller adds the rules that relate two keys.
 */
export function optionsValidator<T>(schema: object, name: string, fail: (problems: string) => Error): (input: unknown) => T {
  const validate = ajv.compile<T>(schema)
  return (input) => {
    const options = structuredClone(input)
    if (!validate(options)) throw fail(describeSchemaErrors(validate.errors ?? [], name).join('; '))
    return options
  }
}
