import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../config.ts'
import { tempDir } from '../helpers/temp-dir.ts'

describe('gatehouse.json', () => {
  it('refuses a "__proto__" key as an unknown key (GH_CONFIG_INVALID) instead of merging it into the config prototype', () => {
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'gatehouse.json'), '{"__proto__": {"mqttPort": 1}}')
    expect(() => loadConfig({ dataDir }, {})).toThrow(
      expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringContaining('unknown key "__proto__"') }),
    )
    expect(({} as Record<string, unknown>).mqttPort).toBeUndefined()
  })
})

describe('settingsLimits', () => {
  it('defaults to 64 KiB layers, 16 levels and 32 KiB schemas, and range-checks gatehouse.json', () => {
    const dataDir = tempDir()
    expect(loadConfig({ dataDir }, {}).settingsLimits).toEqual({ maxLayerBytes: 65_536, maxDepth: 16, maxSchemaBytes: 32_768 })
    writeFileSync(join(dataDir, 'gatehouse.json'), '{"settingsLimits": {"maxSchemaBytes": 10}}')
    expect(() => loadConfig({ dataDir }, {})).toThrow(
      expect.objectContaining({
        code: 'GH_CONFIG_INVALID',
        message: expect.stringContaining('settingsLimits.maxSchemaBytes must be >= 1024'),
      }),
    )
    writeFileSync(join(dataDir, 'gatehouse.json'), '{"settingsLimits": {"maxSchemaBytes": 4096}}')
    expect(loadConfig({ dataDir }, {}).settingsLimits).toEqual({ maxLayerBytes: 65_536, maxDepth: 16, maxSchemaBytes: 4096 })
  })
})
