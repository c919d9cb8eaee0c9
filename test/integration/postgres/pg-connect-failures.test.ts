import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { PgDatabase } from '../../../provisioning/store/postgres/pg-database.ts'
import { PgRegistryStore } from '../../../provisioning/store/postgres/pg-registry-store.ts'
import { postgresAvailable, startPostgres, type PostgresServer } from '../../helpers/postgres.ts'

// Opening the PostgreSQL registry with a wrong URL: each mistake gets its own code, says what to do, and
// shows the server without the password (docs/errors.md).
const available = postgresAvailable()
const PASSWORD = 'Sesame-9f3c2a71'

/** What an operator sees of a failure: the message and, with --json, the same; the password is in neither. */
async function openFailure(url: string): Promise<{ code?: string; message: string }> {
  const err = (await PgDatabase.open(url).then(
    (db) => db.close().then(() => new Error('opened')),
    (e: unknown) => e,
  )) as { code?: string; message: string }
  expect(err.message).not.toContain(PASSWORD)
  expect(err.message).not.toContain(encodeURIComponent(PASSWORD))
  return err
}

describe.skipIf(!available)('opening the PostgreSQL registry', () => {
  let server: PostgresServer
  let roleUrl: (password: string | undefined) => string

  beforeAll(async () => {
    server = await startPostgres()
    roleUrl = await server.passwordRole('gh_operator', PASSWORD, 'postgres')
  })
  afterAll(() => server?.stop())

  it('refuses a wrong password with GH_STORE_AUTH_FAILED, naming the server without the password; the right one opens', async () => {
    const err = await openFailure(roleUrl(`${PASSWORD}-wrong`))
    expect(err).toMatchObject({ code: 'GH_STORE_AUTH_FAILED' })
    expect(err.message).toContain(`postgres://127.0.0.1:${server.port}/postgres`)
    expect(err.message).toMatch(/28P01 password authentication failed for user "gh_operator"/)
    expect(err.message).toMatch(/check the user and password of the database URL .*pg_hba\.conf/)
    expect(await openFailure(roleUrl(undefined))).toMatchObject({
      code: 'GH_STORE_AUTH_FAILED',
      message: expect.stringContaining('the server asks for a password and the URL gives none'),
    })
    const db = await PgDatabase.open(roleUrl(PASSWORD))
    await db.close()
  })

  it('refuses a database that is not there with GH_STORE_DATABASE_MISSING, naming it', async () => {
    const err = await openFailure(roleUrl(PASSWORD).replace(/\/postgres$/, '/no_such_registry'))
    expect(err).toMatchObject({ code: 'GH_STORE_DATABASE_MISSING' })
    expect(err.message).toContain(`postgres://127.0.0.1:${server.port}/no_such_registry`)
    expect(err.message).toMatch(/3D000 database "no_such_registry" does not exist.*createdb/)
  })

  it('refuses a port nothing listens on with GH_STORE_CONNECTION_REFUSED', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const { port } = closed.address() as { port: number }
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const err = await openFailure(`postgres://gh_operator:${PASSWORD}@127.0.0.1:${port}/registry`)
    expect(err).toMatchObject({ code: 'GH_STORE_CONNECTION_REFUSED' })
    expect(err.message).toContain(`nothing accepts connections at postgres://127.0.0.1:${port}/registry (ECONNREFUSED)`)
  })

  it("gives GH_STORE_LOCKED PostgreSQL's advice (pg_stat_activity), not SQLite's (fuser, lsof)", async () => {
    const url = await server.createDatabase('locked')
    const [a, b] = [await PgRegistryStore.open(url), await PgRegistryStore.open(url)]
    onTestFinished(async () => {
      await a.close()
      await b.close()
    })
    // a holds the writer lock while b's probe waits for it past its timeout
    const err = (await a.transaction(() =>
      b.probeWrite(new Date(), 50).then(
        () => new Error('probe passed'),
        (e: unknown) => e,
      ),
    )) as Error
    expect(err).toMatchObject({ code: 'GH_STORE_LOCKED' })
    expect(err.message).toMatch(
      /^the registry is locked by another transaction .*55P03 on postgres:\/\/127\.0\.0\.1:\d+\/locked.*pg_stat_activity/,
    )
    expect(err.message).not.toMatch(/fuser|lsof/)
  })
})
