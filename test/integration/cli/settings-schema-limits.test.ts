import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

describe('settings schema set', () => {
  it('refuses a schema over settingsLimits.maxSchemaBytes (32 KiB by default, or as gatehouse.json says) with GH_SETTINGS_SCHEMA_TOO_LARGE', async () => {
    const dataDir = tempDir()
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    const file = join(dataDir, 'schema.json')
    const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir])
    writeFileSync(file, JSON.stringify({ type: 'object', description: 'x'.repeat(40 * 1024) }))
    const big = await cli(['settings', 'schema', 'set', file, '--group', 'pumps'])
    expect(big.code).not.toBe(0)
    expect(big.stderr).toContain('GH_SETTINGS_SCHEMA_TOO_LARGE')

    writeFileSync(file, JSON.stringify({ type: 'object', description: 'x'.repeat(8 * 1024) }))
    expect((await cli(['settings', 'schema', 'set', file, '--group', 'pumps'])).code).toBe(0)
    writeFileSync(join(dataDir, 'gatehouse.json'), JSON.stringify({ settingsLimits: { maxSchemaBytes: 4096 } }))
    const configured = await cli(['settings', 'schema', 'set', file, '--group', 'pumps'])
    expect(configured.stderr).toContain('GH_SETTINGS_SCHEMA_TOO_LARGE')
  })
})
