import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../config.ts'
import { tempDir } from '../helpers/temp-dir.ts'

// A broken gatehouse.json (issue 17, "Bad input") stops start-up with GH_CONFIG_INVALID naming the file
// and what is wrong, never a stack trace or a silent default.

const deep = (n: number) => `{"limits":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`

describe('malformed gatehouse.json', () => {
  it.each([
    ['fail/truncated', '{"mqttPort": 88', /not valid JSON/],
    ['fail/empty-file', '', /not valid JSON/],
    ['fail/binary', '\u0000\u00ff\u0001garbage', /not valid JSON/],
    ['fail/an-array', '[1, 2]', /must hold a JSON object/],
    ['fail/null', 'null', /must hold a JSON object/],
    ['fail/nested-100000-deep', deep(100_000), /nested deeper than/],
    ['fail/number-beyond-double', '{"mqttPort": 1e400}', /mqttPort/],
    ['fail/huge-integer', '{"mqttPort": 123456789012345678901234567890}', /mqttPort/],
    ['fail/wrong-type', '{"mqttPort": "eighty"}', /mqttPort/],
    ['fail/wrong-type-object', '{"limits": 5}', /limits/],
  ])('%s: GH_CONFIG_INVALID that says what is wrong', (_name, text, message) => {
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'gatehouse.json'), text)
    let err: (Error & { code?: string }) | undefined
    try {
      loadConfig({ dataDir }, {})
    } catch (e) {
      err = e as Error & { code?: string }
    }
    expect(err?.code, String(err?.stack)).toBe('GH_CONFIG_INVALID')
    expect(err?.message).toMatch(message)
  })
})
