import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { buildApi } from '../../../provisioning/api/build-api.ts'
import { openControlPlane } from '../../../provisioning/index.ts'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

async function initialised() {
  const dataDir = join(tempDir(), 'data')
  const init = await runCli(['init', '--data-dir', dataDir])
  expect(init.code, init.stderr).toBe(0)
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir])
  return { dataDir, cli }
}

/** The API over the same data directory, as `gatehouse start` would serve it. */
async function apiOver(dataDir: string) {
  const log = pino({ level: 'silent' })
  const control = await openControlPlane(dataDir, {}, { log })
  const app = buildApi({
    ...control,
    presence: { isConnected: () => false, lastSeen: async () => null },
    clock: { now: () => new Date() },
    log,
  })
  onTestFinished(async () => {
    await app.close()
    await control.close()
  })
  return { app, control }
}

describe('gatehouse apikey', () => {
  it('creates a key printed once on stdout that the API accepts, lists it without secrets, and revokes it', async () => {
    const { dataDir, cli } = await initialised()
    const created = await cli('apikey', 'create', '--name', 'dashboard', '--scopes', 'devices:read,settings:write', '--expires', '30d')
    expect(created.code, created.stderr).toBe(0)
    const token = created.stdout.trim()
    expect(token).toMatch(/^ghk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
    expect(created.stderr).toMatch(/shown only once/)

    const { app, control } = await apiOver(dataDir)
    const ok = await app.inject({ url: '/v1/devices', headers: { authorization: `Bearer ${token}` } })
    expect(ok.statusCode).toBe(200)

    const listed = await cli('apikey', 'list', '--json')
    expect(listed.code).toBe(0)
    const [key] = JSON.parse(listed.stdout)
    expect(key).toMatchObject({
      name: 'dashboard',
      scopes: ['devices:read', 'settings:write'],
      revokedAt: null,
      lastUsedAt: expect.any(String),
    })
    expect(Date.parse(key.expiresAt) - Date.parse(key.createdAt)).toBe(30 * 86_400_000)
    const secret = token.split('_').slice(2).join('_')
    expect(listed.stdout).not.toContain(secret)
    const text = await cli('apikey', 'list')
    expect(text.stdout).toMatch(/^NAME\s+SCOPES\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED\n/)
    expect(text.stdout).toContain('dashboard')

    const revoked = await cli('apikey', 'revoke', 'dashboard')
    expect(revoked.code, revoked.stderr).toBe(0)
    const after = await app.inject({ url: '/v1/devices', headers: { authorization: `Bearer ${token}` } })
    expect(after.statusCode).toBe(401)
    expect((await control.authority.listAudit()).map((e) => e.action)).toEqual(expect.arrayContaining(['apikey.created', 'apikey.revoked']))
    expect(JSON.stringify(await control.authority.listAudit())).not.toContain(secret)
  })

  it('rotates a key: both secrets work during --overlap, a rotation with --overlap 0 refuses the old one at once', async () => {
    const { dataDir, cli } = await initialised()
    const first = (await cli('apikey', 'create', '--name', 'app', '--scopes', 'devices:read')).stdout.trim()
    const rotated = await cli('apikey', 'rotate', 'app', '--overlap', '1h')
    expect(rotated.code, rotated.stderr).toBe(0)
    const second = rotated.stdout.trim()
    expect(second).toMatch(/^ghk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/)
    expect(second.slice(0, 17)).toBe(first.slice(0, 17)) // the same key id
    expect(rotated.stderr).toMatch(/previous secret works until/)
    const { app, control } = await apiOver(dataDir)
    const status = async (token: string) =>
      (await app.inject({ url: '/v1/devices', headers: { authorization: `Bearer ${token}` } })).statusCode
    expect([await status(first), await status(second)]).toEqual([200, 200])

    const third = await cli('apikey', 'rotate', 'app', '--overlap', '0', '--json')
    expect(third.code, third.stderr).toBe(0)
    const { token, key } = JSON.parse(third.stdout)
    expect(key).toMatchObject({ name: 'app', previousSecretUntil: expect.any(String) })
    expect([await status(first), await status(second), await status(token)]).toEqual([401, 401, 200])
    expect((await control.authority.listAudit()).filter((e) => e.action === 'apikey.rotated')).toHaveLength(2)
    expect(JSON.stringify(await control.authority.listAudit())).not.toContain(token.split('_').slice(2).join('_'))

    const bad = await cli('apikey', 'rotate', 'app', '--overlap', '31d')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^error GH_API_KEY_OVERLAP_INVALID: /m)
    expect(await status(token)).toBe(200)
  })

  it.each([
    ['fail/unknown-scope', ['apikey', 'create', '--name', 'x', '--scopes', 'devices:read,root'], 'GH_API_KEY_SCOPE_INVALID'],
    ['fail/bad-expiry', ['apikey', 'create', '--name', 'x', '--scopes', 'devices:read', '--expires', 'soon'], 'GH_API_KEY_EXPIRY_INVALID'],
    ['fail/bad-name', ['apikey', 'create', '--name', 'a b', '--scopes', 'devices:read'], 'GH_API_KEY_NAME_INVALID'],
    ['fail/revoke-unknown', ['apikey', 'revoke', 'ghost'], 'GH_API_KEY_NOT_FOUND'],
  ])('%s exits 1 with the code', async (_name, args, code) => {
    const { cli } = await initialised()
    const res = await cli(...args)
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(new RegExp(`^error ${code}: `, 'm'))
    expect(res.stdout).toBe('')
    expect(JSON.parse((await cli('apikey', 'list', '--json')).stdout)).toEqual([])
  })

  it('refuses a second key with the same name', async () => {
    const { cli } = await initialised()
    expect((await cli('apikey', 'create', '--name', 'x', '--scopes', 'devices:read')).code).toBe(0)
    const again = await cli('apikey', 'create', '--name', 'x', '--scopes', 'devices:read', '--json')
    expect(again.code).toBe(1)
    // with --json the error is JSON too (test/integration/cli/json-output.test.ts)
    expect(JSON.parse(again.stderr)).toMatchObject({ code: 'GH_API_KEY_EXISTS' })
  })
})
