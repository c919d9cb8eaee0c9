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

describe('httpTrustProxy', () => {
  it('takes addresses, CIDRs and the keywords, from gatehouse.json or GATEHOUSE_HTTP_TRUST_PROXY (comma-separated)', () => {
    const config = loadConfig({ dataDir: tempDir() }, { GATEHOUSE_HTTP_TRUST_PROXY: '10.0.0.0/8, 192.0.2.7, fd00::/8, loopback' })
    expect(config.httpTrustProxy).toEqual(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', 'loopback'])
    expect(loadConfig({ dataDir: tempDir() }, {}).httpTrustProxy).toEqual([])
  })

  it.each(['proxy.example', '10.0.0.0/33', 'fd00::/129', '10.0.0.1/8/8', '10.0.0.0/x', '*'])(
    'refuses %s with GH_CONFIG_INVALID naming it',
    (entry) => {
      const dataDir = tempDir()
      writeFileSync(join(dataDir, 'gatehouse.json'), JSON.stringify({ httpTrustProxy: [entry] }))
      expect(() => loadConfig({ dataDir }, {})).toThrow(
        expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringContaining(`'${entry}'`) }),
      )
    },
  )
})
