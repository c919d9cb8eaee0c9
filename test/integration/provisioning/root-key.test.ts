import { readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { initControlPlane, openControlPlane } from '../../../provisioning/index.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const log = pino({ level: 'silent' })
const passphrase = 'correct horse'

describe('the root CA key is opened only by ca rotate', () => {
  it('with ca/root.key absent: the control plane opens, start (init) runs, devices are issued; ca rotate needs it and changes nothing without it', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const env = { GATEHOUSE_CA_PASSPHRASE: passphrase }
    const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir], env)
    expect((await runCli(['init', '--data-dir', dataDir], env)).code).toBe(0)
    const rootKey = join(dataDir, 'ca', 'root.key')
    renameSync(rootKey, join(dir, 'root.key.offline'))

    await initControlPlane(dataDir, {}, { log, passphrase }, 'test')
    const control = await openControlPlane(dataDir, {}, { log, passphrase })
    try {
      const issued = await control.authority.createDevice({ id: 'p1' }, 'test')
      expect(issued.certificatePem).toContain('BEGIN CERTIFICATE')
    } finally {
      await control.close()
    }
    const created = await cli(['device', 'create', 'p2', '--out', join(dir, 'out')])
    expect(created.code, created.stderr).toBe(0)

    const issuingBefore = readFileSync(join(dataDir, 'ca', 'issuing.crt'), 'utf8')
    const refused = await cli(['ca', 'rotate'])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('GH_CA_KEY_UNREADABLE')
    expect(refused.stderr).toContain('root.key')
    expect(readFileSync(join(dataDir, 'ca', 'issuing.crt'), 'utf8')).toBe(issuingBefore)

    renameSync(join(dir, 'root.key.offline'), rootKey)
    const rotated = await cli(['ca', 'rotate'])
    expect(rotated.code, rotated.stderr).toBe(0)
    expect(readFileSync(join(dataDir, 'ca', 'issuing.crt'), 'utf8')).not.toBe(issuingBefore)
  })
})
