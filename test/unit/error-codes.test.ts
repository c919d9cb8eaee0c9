import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as brokerErrors from '../../broker/errors.ts'
import * as certsErrors from '../../certs/errors.ts'
import * as config from '../../config.ts'
import * as deviceSimErrors from '../../device-sim/errors.ts'
import * as provisioningErrors from '../../provisioning/errors.ts'

// fastify's errors.test.js idea (docs/conventions.md §10): every code is documented, and nothing else is.
function codesOf(mod: Record<string, unknown>): string[] {
  return Object.values(mod).flatMap((v) => {
    if (typeof v !== 'function') return []
    let code: unknown
    try {
      code = new (v as new () => { code?: unknown })().code
    } catch {
      return []
    }
    return typeof code === 'string' && code.startsWith('GH_') ? [code] : []
  })
}

describe('error codes', () => {
  const exported = new Set(
    [certsErrors, provisioningErrors, brokerErrors, config, deviceSimErrors].flatMap((m) => codesOf(m as Record<string, unknown>)),
  )
  const documented = new Set(
    [...readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8').matchAll(/^### (GH_[A-Z0-9_]+)$/gm)].map(
      (m) => m[1] as string,
    ),
  )

  it('finds the codes it checks', () => {
    expect(exported.size).toBeGreaterThan(30)
  })

  it('documents every exported GH_ code in docs/errors.md', () => {
    expect([...exported].filter((c) => !documented.has(c))).toEqual([])
  })

  it('documents no code that no longer exists', () => {
    expect([...documented].filter((c) => !exported.has(c))).toEqual([])
  })
})
