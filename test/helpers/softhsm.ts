import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'vitest'

/**
 * SoftHSM2 (Debian's softhsm2, installed by .ci/run) as a real PKCS#11 token for the tests: each token
 * lives in its own temp dir, found through a softhsm2.conf that SOFTHSM2_CONF names.
 */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so'
const SOFTHSM_UTIL = '/usr/bin/softhsm2-util'

export interface SoftHsmToken {
  label: string
  pin: string
  /** the environment a process needs to see this token: { SOFTHSM2_CONF } */
  env: { SOFTHSM2_CONF: string }
}

/** A new token labelled `label` with user PIN `pin`, in `dir` (a temp dir of the test). */
export function createSoftHsmToken(dir: string, label = 'gatehouse-test', pin = '4711-0815'): SoftHsmToken {
  const tokens = join(dir, 'tokens')
  mkdirSync(tokens, { recursive: true, mode: 0o700 })
  const conf = join(dir, 'softhsm2.conf')
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`)
  const env = { SOFTHSM2_CONF: conf }
  execFileSync(SOFTHSM_UTIL, ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `so-${pin}`], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  })
  return { label, pin, env }
}

/**
 * describe() for suites that need SoftHSM2: skipped with a message where it is absent, except in CI
 * (CI set), where its absence fails.
 */
export function describeWithSoftHsm(name: string, suite: () => void): void {
  const missing = [SOFTHSM_MODULE, SOFTHSM_UTIL].find((p) => !existsSync(p))
  if (missing === undefined) return void describe(name, suite)
  if (process.env.CI)
    return void describe(name, () => {
      it('needs SoftHSM2', () => {
        throw new Error(`${missing} is missing: install softhsm2 (.ci/run does)`)
      })
    })
  console.warn(`skipping "${name}": SoftHSM2 is not installed (${missing} is missing; apt-get install softhsm2)`)
  describe.skip(name, suite)
}
