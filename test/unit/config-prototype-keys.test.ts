import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../config.ts'
import { tempDir } from '../helpers/temp-dir.ts'

describe('gatehouse.json', () => {
  it('refuses a "__proto__" key as an unknown key (GH_CONFIG_INVALID) instead of merging it into the config prototype', () => {
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'gatehouse.json'), '{"__proto__": {"mqttPort": 1}}')
    expect(() => loadConfig({ dataDir }, {})).toThrow(expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringContaining('unknown key "__proto__"') }))
    expect(({} as Record<string, unknown>).mqttPort).toBeUndefined()
  })
})
