import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

async function fleet() {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const init = await runCli(['init', '--data-dir', dataDir])
  expect(init.code, init.stderr).toBe(0)
  const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir])
  const json = async (args: string[]) => {
    const res = await cli([...args, '--json'])
    expect(res.code, res.stderr).toBe(0)
    return JSON.parse(res.stdout)
  }
  const out = join(dir, 'devices')
  for (const [id, labels] of [
    ['a-1', ['site=n', 'line=1']],
    ['a-2', ['site=n']],
    ['b-1', ['site=s']],
  ] as const) {
    const res = await cli(['device', 'create', id, '--group', 'plant', '--out', out, ...labels.flatMap((l) => ['--label', l])])
    expect(res.code, res.stderr).toBe(0)
  }
  return { cli, json }
}

describe('gatehouse device list, update and bulk (labels, filters, bulk actions)', () => {
  it('lists by label, updates group, tier and labels, and refuses bad input with a usage or coded error', async () => {
    const { cli, json } = await fleet()
    const listed = await json(['device', 'list', '--label', 'site=n'])
    expect(listed.map((d: { id: string; labels: unknown }) => [d.id, d.labels])).toEqual([
      ['a-1', { line: '1', site: 'n' }],
      ['a-2', { site: 'n' }],
    ])
    expect((await json(['device', 'list', '--label', 'site=n', '--label', 'line=1'])).map((d: { id: string }) => d.id)).toEqual(['a-1'])
    expect((await json(['device', 'list', '--after', 'a-1', '--limit', '1'])).map((d: { id: string }) => d.id)).toEqual(['a-2'])
    expect(await json(['device', 'list', '--expires-before', '2000-01-01'])).toEqual([])

    const updated = await json([
      'device',
      'update',
      'a-1',
      '--tier',
      'premium',
      '--no-group',
      '--remove-label',
      'line',
      '--label',
      'rack=4',
    ])
    expect(updated).toMatchObject({ id: 'a-1', group: null, tier: 'premium', labels: { rack: '4', site: 'n' } })
    expect((await json(['device', 'list', '--tier', 'premium'])).map((d: { id: string }) => d.id)).toEqual(['a-1'])
    const audit = await json(['audit', '--device', 'a-1'])
    expect(audit[0]).toMatchObject({ action: 'device.updated', actor: expect.stringMatching(/^operator:/) })

    expect((await cli(['device', 'update', 'a-1'])).code).toBe(2)
    expect((await cli(['device', 'list', '--expires-before', 'soon'])).code).toBe(2)
    const badLabel = await cli(['device', 'update', 'a-1', '--label', 'no-equals'])
    expect(badLabel.code).toBe(1)
    expect(badLabel.stderr).toContain('GH_LABELS_INVALID')
    const badTier = await cli(['device', 'update', 'a-1', '--tier', 'a b'])
    expect(badTier.stderr).toContain('GH_DEVICE_FIELD_INVALID')
  })

  it('bulk: a dry run and an over-max run change nothing; then disable, move and revoke by selector, with progress', async () => {
    const { cli, json } = await fleet()
    const over = await cli(['device', 'bulk', 'disable', '--label', 'site=n', '--max', '1'])
    expect(over.code).toBe(1)
    expect(over.stderr).toContain('GH_BULK_OVER_MAX')
    expect(await json(['device', 'bulk', 'disable', '--label', 'site=n', '--max', '5', '--dry-run'])).toEqual({
      action: 'disable',
      dryRun: true,
      count: 2,
      deviceIds: ['a-1', 'a-2'],
    })
    expect(await json(['device', 'list', '--status', 'disabled'])).toEqual([])

    const disabled = await cli(['device', 'bulk', 'disable', '--label', 'site=n', '--max', '5'])
    expect(disabled.code, disabled.stderr).toBe(0)
    expect(disabled.stdout).toBe('disabled 2 devices: a-1, a-2\n')
    expect(disabled.stderr).toContain('disable: 2/2 (100%)')
    expect((await json(['device', 'list', '--status', 'disabled'])).map((d: { id: string }) => d.id)).toEqual(['a-1', 'a-2'])

    expect(await json(['device', 'bulk', 'move', '--group', 'plant', '--to-tier', 'gold', '--max', '5'])).toMatchObject({ count: 3 })
    expect((await json(['device', 'list', '--tier', 'gold'])).length).toBe(3)

    const revoked = await json(['device', 'bulk', 'revoke', '--status', 'disabled', '--reason', 'keyCompromise', '--max', '2'])
    expect(revoked).toMatchObject({ action: 'revoke', count: 2, deviceIds: ['a-1', 'a-2'] })
    const audit = await json(['audit', '--action', 'device.revoked'])
    expect(
      audit
        .map((e: { subject: string; details: { bulk: boolean; reason: string } }) => [e.subject, e.details.reason, e.details.bulk])
        .sort(),
    ).toEqual([
      ['a-1', 'keyCompromise', true],
      ['a-2', 'keyCompromise', true],
    ])
    expect((await cli(['device', 'bulk', 'enable', '--max', '5'])).stderr).toContain('GH_BULK_INVALID')
  })
})
