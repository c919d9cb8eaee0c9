import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { STAGING_NOTE, stageBundles, writeBundlesThenCommit } from '../../../provisioning/bundles/write-bundle.ts'
import { initControlPlane, openControlPlane } from '../../../provisioning/index.ts'
import { mountable, smallDisk } from '../../helpers/small-disk.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const log = pino({ level: 'silent' })

async function controlPlane() {
  const dataDir = join(tempDir(), 'data')
  await initControlPlane(dataDir, {}, { log }, 'operator:test')
  const control = await openControlPlane(dataDir, {}, { log })
  onTestFinished(() => control.close())
  return control
}

const stagingOf = (out: string): string[] => (existsSync(out) ? readdirSync(out).filter((n) => n.startsWith('.gatehouse-staging-')) : [])

describe('a batch whose bundles are written as its devices are issued', () => {
  it('has the first bundle durable in the staging folder while devices are still being issued, and registers all at the commit', async () => {
    const control = await controlPlane()
    const out = join(tempDir(), 'out')
    const staged = stageBundles(out, { format: 'pem' })
    let stagedEarly: string[] = []
    const batch = await control.authority.prepareBatch(
      { count: 100, prefix: 'ov-' },
      'operator:test',
      (done) => {
        // the first device's progress: its bundle is written, the other 99 are not all issued yet
        if (done === 1) stagedEarly = readdirSync(join(out, stagingOf(out)[0]!))
      },
      staged.write,
    )
    expect(stagedEarly).toContain(STAGING_NOTE)
    expect(stagedEarly.filter((n) => n.startsWith('ov-')).length).toBeGreaterThanOrEqual(1)
    expect(await control.authority.countDevices()).toBe(0) // nothing registered before the commit
    const paths = await staged.commit(batch.commit)
    expect(paths).toHaveLength(100)
    expect(await control.authority.countDevices()).toBe(100)
    expect(readdirSync(out).length).toBe(100)
    expect(readdirSync(join(out, 'ov-0100')).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem'])
    expect((statSync(join(out, 'ov-0100', 'key.pem')).mode & 0o777).toString(8)).toBe('600')
  })

  it('creates a device named like the staging note (NOTE.txt): the note has a name no device can have', async () => {
    const control = await controlPlane()
    const out = join(tempDir(), 'out')
    const prepared = await control.authority.prepareDevice({ id: 'NOTE.txt', group: null }, 'operator:test')
    const [path] = await writeBundlesThenCommit(out, [prepared.issued], { format: 'pem' }, prepared.commit)
    expect(path).toBe(join(out, 'NOTE.txt'))
    expect(readdirSync(join(out, 'NOTE.txt')).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem'])
    expect(await control.authority.countDevices()).toBe(1)
  })

  it('writes ca.pem once per batch and hard-links it into every bundle; nothing but the bundles is left (issue 14)', async () => {
    const control = await controlPlane()
    const out = join(tempDir(), 'out')
    const staged = stageBundles(out, { format: 'pem' })
    const batch = await control.authority.prepareBatch({ count: 20, prefix: 'ln-' }, 'operator:test', undefined, staged.write)
    await staged.commit(batch.commit)
    expect(readdirSync(out).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `ln-${String(i + 1).padStart(4, '0')}`))
    const chain = readFileSync(join(out, 'ln-0001', 'ca.pem'), 'utf8')
    const inodes = new Set<number>()
    for (const id of readdirSync(out)) {
      const ca = statSync(join(out, id, 'ca.pem'))
      expect(ca.nlink).toBe(20) // the staging folder's first link is gone with it
      expect((ca.mode & 0o777).toString(8)).toBe('644')
      expect(readFileSync(join(out, id, 'ca.pem'), 'utf8')).toBe(chain)
      expect(statSync(join(out, id, 'cert.pem')).nlink).toBe(1)
      inodes.add(ca.ino)
    }
    expect(inodes.size).toBe(1)
    expect(chain.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2) // the issuing CA, then the root
  })

  it('stops at a bundle it cannot write: the coded error, no device registered, no staging folder left', async () => {
    const control = await controlPlane()
    const out = join(tempDir(), 'out')
    mkdirSync(join(out, 'st-0040'), { recursive: true }) // a bundle already there: never overwritten
    const staged = stageBundles(out, { format: 'pem' })
    const refused = await control.authority
      .prepareBatch({ count: 60, prefix: 'st-' }, 'operator:test', undefined, staged.write)
      .catch((err: Error) => err)
    expect(refused).toMatchObject({ code: 'GH_OUTPUT_EXISTS' })
    staged.abort()
    expect(stagingOf(out)).toEqual([])
    expect(readdirSync(out)).toEqual(['st-0040'])
    expect(await control.authority.countDevices()).toBe(0)
  })

  it.skipIf(!mountable)('on a full disk: GH_STORE_DISK_FULL, no device registered, the staging folder removed', async () => {
    const control = await controlPlane()
    const disk = smallDisk('256k')
    if (!disk) return
    const out = join(disk, 'out')
    const staged = stageBundles(out, { format: 'pem' })
    const refused = await control.authority
      .prepareBatch({ count: 400, prefix: 'full-' }, 'operator:test', undefined, staged.write)
      .catch((err: Error) => err)
    expect(refused).toMatchObject({ code: 'GH_STORE_DISK_FULL' })
    staged.abort()
    expect(stagingOf(out)).toEqual([])
    expect(await control.authority.countDevices()).toBe(0)
  })
})
