import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { initControlPlane, openControlPlane } from '../../../provisioning/index.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const log = pino({ level: 'silent' })

describe('settings.key', () => {
  it('is created by init, before anything is sealed', async () => {
    const dataDir = tempDir()
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    expect(existsSync(join(dataDir, 'settings.key'))).toBe(true)
  })

  it('is never replaced while sealed secrets exist: start (init) refuses, settings changes refuse, other commands work, restoring it heals', async () => {
    const dataDir = tempDir()
    const keyPath = join(dataDir, 'settings.key')
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    expect((await runCli(['device', 'create', 'p1', '--group', 'pumps', '--out', join(dataDir, 'b1'), '--data-dir', dataDir])).code).toBe(0)
    expect((await runCli(['settings', 'set', '--defaults', 'wifi_secret="pw-1"', 'rate=5', '--data-dir', dataDir])).code).toBe(0)
    const key = readFileSync(keyPath)
    rmSync(keyPath)

    // start runs init first: refused, and no new key is made
    await expect(initControlPlane(dataDir, {}, { log }, 'test')).rejects.toMatchObject({ code: 'GH_SETTINGS_KEY_MISSING' })
    const set = await runCli(['settings', 'set', '--defaults', 'rate=6', '--data-dir', dataDir])
    expect(set.code).not.toBe(0)
    expect(set.stderr).toContain('GH_SETTINGS_KEY_MISSING')
    expect(set.stderr).toContain('settings.key')
    expect(existsSync(keyPath)).toBe(false)

    // the rest of the control plane keeps working; secrets read as [secret]
    expect((await runCli(['device', 'create', 'p2', '--group', 'pumps', '--out', join(dataDir, 'b2'), '--data-dir', dataDir])).code).toBe(0)
    const get = await runCli(['settings', 'get', '--device', 'p1', '--json', '--data-dir', dataDir])
    expect(get.code, get.stderr).toBe(0)
    expect(JSON.parse(get.stdout).desired).toEqual({ wifi_secret: '[secret]', rate: 5 })
    expect(existsSync(keyPath)).toBe(false)

    writeFileSync(keyPath, key, { mode: 0o600 })
    const control = await openControlPlane(dataDir, {}, { log })
    try {
      expect((await control.settings.deliverable('p1'))?.settings).toEqual({ wifi_secret: 'pw-1', rate: 5 })
    } finally {
      await control.close()
    }
    expect((await runCli(['settings', 'set', '--defaults', 'rate=6', '--data-dir', dataDir])).code).toBe(0)
  })

  it('is made on first use of a data dir from an older init while nothing is sealed', async () => {
    const dataDir = tempDir()
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    rmSync(join(dataDir, 'settings.key'))
    expect((await runCli(['settings', 'set', '--defaults', 'rate=5', '--data-dir', dataDir])).code).toBe(0)
    expect((await runCli(['settings', 'set', '--defaults', 'wifi_secret=pw', '--data-dir', dataDir])).code).toBe(0)
    expect(existsSync(join(dataDir, 'settings.key'))).toBe(true)
  })

  it('start (init) refuses a key that is not the one the secrets were sealed with (GH_SETTINGS_KEY_INVALID)', async () => {
    const dataDir = tempDir()
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    expect((await runCli(['settings', 'set', '--group', 'pumps', 'wifi_secret=pw', '--data-dir', dataDir])).code).toBe(0)
    const other = Buffer.alloc(32, 9).toString('base64')
    await expect(initControlPlane(dataDir, {}, { log, settingsKey: other }, 'test')).rejects.toMatchObject({
      code: 'GH_SETTINGS_KEY_INVALID',
    })
    await initControlPlane(dataDir, {}, { log }, 'test')
  })
})
