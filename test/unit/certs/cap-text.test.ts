import { describe, expect, it } from 'vitest'
import { capStrings, capText } from '../../../certs/index.ts'
import { MAX_UNTRUSTED_CHARS } from '../../../certs/cap-text.ts'

describe('capText', () => {
  it.each([
    ['ok/short', 'pump-7', 'pump-7'],
    ['ok/exactly-the-cap', 'a'.repeat(MAX_UNTRUSTED_CHARS), 'a'.repeat(MAX_UNTRUSTED_CHARS)],
    ['cut/60k', 'x'.repeat(60_000), `${'x'.repeat(128)}…[+59872 chars]`],
  ])('%s', (_name, input, expected) => {
    expect(capText(input)).toBe(expected)
  })

  it('caps every string field and leaves the others alone', () => {
    const capped = capStrings({ clientId: 'c'.repeat(1000), n: 3, ok: null, topics: ['t'.repeat(200)] })
    expect(capped).toEqual({ clientId: `${'c'.repeat(128)}…[+872 chars]`, n: 3, ok: null, topics: [`${'t'.repeat(128)}…[+72 chars]`] })
  })
})
