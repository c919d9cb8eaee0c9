import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

// An integer beyond ±(2^53 - 1) in what an operator gives `settings` (issue 17): JSON.parse would round it
// and devices would get another number than the operator wrote, so it is refused with GH_JSON_INTEGER_UNSAFE
// naming where it is, exit code 1, and nothing is stored.
describe('settings commands refuse integers JSON.parse would round', () => {
  it('--from-file, KEY=VALUE and schema set: GH_JSON_INTEGER_UNSAFE with the path, nothing stored; 2^53 - 1 is kept exactly', async () => {
    const dataDir = tempDir()
    const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir])
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    const file = join(dataDir, 'patch.json')
    writeFileSync(file, '{"pump": {"serials": [1, 9007199254740993]}}')

    const fromFile = await cli(['settings', 'set', '--defaults', '--from-file', file])
    expect(fromFile.code).toBe(1)
    expect(fromFile.stderr).toContain('GH_JSON_INTEGER_UNSAFE')
    expect(fromFile.stderr).toContain('9007199254740993 at --from-file pump.serials.1')
    const pair = await cli(['settings', 'set', '--defaults', 'pump.serial=18446744073709551615'])
    expect(pair.code).toBe(1)
    expect(pair.stderr).toContain("18446744073709551615 at 'pump.serial'")
    const schema = await cli(['settings', 'schema', 'set', file, '--group', 'pumps', '--json'])
    expect(schema.code).toBe(1)
    expect(JSON.parse(schema.stderr)).toMatchObject({ code: 'GH_JSON_INTEGER_UNSAFE' })

    const defaults = JSON.parse((await cli(['settings', 'get', '--defaults', '--json'])).stdout)
    expect(defaults).toMatchObject({ revision: 0, document: {} })
    expect(JSON.parse((await cli(['settings', 'schema', 'get', '--group', 'pumps'])).stdout)).toBeNull()

    // a string keeps any number of digits, and the largest safe integer is stored as written
    expect((await cli(['settings', 'set', '--defaults', 'pump.serial="18446744073709551615"', 'pump.max=9007199254740991'])).code).toBe(0)
    expect(JSON.parse((await cli(['settings', 'get', '--defaults', '--json'])).stdout).document).toEqual({
      pump: { serial: '18446744073709551615', max: 9007199254740991 },
    })
  })
})
