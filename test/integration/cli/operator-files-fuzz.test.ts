import { describe, expect, it } from 'vitest'
import { FILE_TARGETS } from '../../fuzz/file-cases.ts'
import { runFileFuzz } from '../../fuzz/run-files.ts'

// The operator's files, fuzzed (issue 17): `npm run fuzz -- --target files --cases N --seed S` runs many;
// here 40 seeded cases (10 per target) and every saved regression, through the real CLI.
describe('fuzzed operator files (settings patch, schema, claim allow-list, gatehouse.json)', () => {
  it('each gives exit 0 or one coded GH_ error with the registry unchanged; never a stack trace or a hang', async () => {
    const v = await runFileFuzz({ seed: 17, cases: 40 })
    expect(v.failures).toEqual([])
    // not vacuous: every target refused something with its own code, and some inputs were still valid
    const codes = Object.keys(v.outcomes)
    for (const code of ['GH_SETTINGS_INVALID', 'GH_CONFIG_INVALID']) expect(codes).toContain(code)
    expect(Object.values(v.outcomes).reduce((a, b) => a + b, 0)).toBe(40 + v.regressions)
    expect(FILE_TARGETS).toHaveLength(4)
  }, 180_000)
})
