import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openssl, runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8)

async function initialised() {
  const dir = tempDir()
  const dataDir = join(dir, 'data')
  const out = join(dir, 'claims')
  const init = await runCli(['init', '--data-dir', dataDir])
  expect(init.code, init.stderr).toBe(0)
  const cli = (args: string[]) => runCli([...args, '--data-dir', dataDir])
  return { dir, dataDir, out, cli }
}

describe('gatehouse claim', () => {
  it('create writes the claim bundle (key and tokens 0600, no secrets in claim.json), list shows it, revoke revokes it once', async () => {
    const { dir, out, cli } = await initialised()
    const allow = join(dir, 'ids.txt')
    writeFileSync(allow, '# batch 7\npump-0001\npump-0002\n')
    const res = await cli([
      'claim',
      'create',
      '--group',
      'pumps',
      '--max-uses',
      '2',
      '--expires',
      '24h',
      '--allow-ids',
      allow,
      '--tokens',
      '3',
      '--out',
      out,
      '--json',
    ])
    expect(res.code, res.stderr).toBe(0)
    const summary = JSON.parse(res.stdout)
    expect(summary).toMatchObject({
      group: 'pumps',
      tier: 'standard',
      maxUses: 2,
      uses: 0,
      allowedIds: ['pump-0001', 'pump-0002'],
      tokensRequired: true,
      status: 'active',
    })
    expect(summary.tokens).toHaveLength(3)
    const bundle = join(out, summary.claimId)
    expect(readdirSync(bundle).sort()).toEqual(['ca.pem', 'cert.pem', 'claim.json', 'key.pem', 'tokens.txt'])
    expect(mode(join(bundle, 'key.pem'))).toBe('600')
    expect(mode(join(bundle, 'tokens.txt'))).toBe('600')
    expect(readFileSync(join(bundle, 'tokens.txt'), 'utf8').trim().split('\n')).toEqual(summary.tokens)
    const claimJson = readFileSync(join(bundle, 'claim.json'), 'utf8')
    for (const t of summary.tokens) expect(claimJson).not.toContain(t)
    expect(claimJson).not.toContain('PRIVATE KEY')
    const verify = await openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(bundle, 'ca.pem'), join(bundle, 'cert.pem')])
    expect(verify.code, verify.stderr).toBe(0)
    const subject = await openssl(['x509', '-in', join(bundle, 'cert.pem'), '-noout', '-subject', '-enddate'])
    expect(subject.stdout).toContain(`claim:${summary.claimId}`)
    // the key matches the certificate
    const certKey = (await openssl(['x509', '-in', join(bundle, 'cert.pem'), '-noout', '-pubkey'])).stdout
    expect((await openssl(['pkey', '-in', join(bundle, 'key.pem'), '-pubout'])).stdout).toBe(certKey)
    expect(existsSync(join(out, '.gatehouse-staging-'))).toBe(false)
    expect(readdirSync(out)).toEqual([summary.claimId])

    const list = await cli(['claim', 'list', '--json'])
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ claimId: summary.claimId, uses: 0, status: 'active' })])
    expect(list.stdout).not.toContain(summary.tokens[0])
    const text = await cli(['claim', 'list'])
    expect(text.stdout).toMatch(new RegExp(`${summary.claimId}\\s+pumps\\s+standard\\s+0/2`))

    expect((await cli(['claim', 'revoke', summary.claimId])).code).toBe(0)
    const again = await cli(['claim', 'revoke', summary.claimId])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('GH_CLAIM_REVOKED')
    const audit = await cli(['audit', '--json'])
    expect(audit.stdout).toContain('claim.revoked')
  })

  it.each([
    ['fail/expires', ['--group', 'pumps', '--expires', 'soon'], 1, 'GH_CLAIM_OPTIONS_INVALID'],
    ['fail/pattern', ['--group', 'pumps', '--id-pattern', '('], 1, 'GH_CLAIM_OPTIONS_INVALID'],
    ['fail/no-group', [], 2, 'group'],
    ['fail/max-uses', ['--group', 'pumps', '--max-uses', '0'], 2, 'max-uses'],
  ])('%s exits non-zero with a clear message and writes nothing', async (_name, args, code, text) => {
    const { out, cli } = await initialised()
    const res = await cli(['claim', 'create', ...args, '--out', out])
    expect(res.code).toBe(code)
    expect(res.stderr).toContain(text)
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([])
    expect(JSON.parse((await cli(['claim', 'list', '--json'])).stdout)).toEqual([])
  })

  it('create with no bound gets the default max uses, and says so', async () => {
    const { out, cli } = await initialised()
    const res = await cli(['claim', 'create', '--group', 'pumps', '--id-pattern', '^pump-[0-9]+$', '--out', out])
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toContain('max uses 10 (the default: give --max-uses, --tokens or --allow-ids to choose)')
    expect(JSON.parse((await cli(['claim', 'list', '--json'])).stdout)).toEqual([expect.objectContaining({ maxUses: 10 })])
  })

  it('revoke of an unknown claim says so', async () => {
    const { cli } = await initialised()
    const res = await cli(['claim', 'revoke', 'nope-nope'])
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('GH_CLAIM_NOT_FOUND')
  })
})
