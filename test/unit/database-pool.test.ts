import { describe, expect, it } from 'vitest'
import { configEnvBindings, loadConfig } from '../../config.ts'
import { databasePool } from '../../gatehouse.ts'

describe('the PostgreSQL registry pool of a process (databasePoolSize, databaseStatementTimeoutMs)', () => {
  const config = (input: Record<string, unknown>, env: Record<string, string> = {}) =>
    loadConfig({ dataDir: '/tmp/unused', databaseUrl: 'postgres://gatehouse@127.0.0.1/gatehouse', ...input }, env)

  it('is 10 connections and a 15 s statement timeout by default, for a node that is not a worker', () => {
    expect(databasePool(config({}), false)).toEqual({ poolSize: 10, statementTimeoutMs: 15_000 })
  })

  it('divides databasePoolSize among the workers of one gatehouse start (each opens its own pool), at least 2 each', () => {
    const cluster = { redisUrl: 'redis://127.0.0.1:6379' }
    expect(databasePool(config({ databasePoolSize: 20, cluster: { ...cluster, workers: 4 } }), true).poolSize).toBe(5)
    expect(databasePool(config({ databasePoolSize: 10, cluster: { ...cluster, workers: 3 } }), true).poolSize).toBe(3)
    expect(databasePool(config({ databasePoolSize: 4, cluster: { ...cluster, workers: 8 } }), true).poolSize).toBe(2)
    // a node of its own (--workers 1, or tests' in-process nodes) keeps the whole size
    expect(databasePool(config({ databasePoolSize: 20, cluster: { ...cluster, workers: 4 } }), false).poolSize).toBe(20)
  })

  it('takes both from the environment, and refuses values out of range with GH_CONFIG_INVALID naming the variable', () => {
    const names = configEnvBindings().map((b) => b.name)
    expect(names).toEqual(expect.arrayContaining(['GATEHOUSE_DATABASE_POOL_SIZE', 'GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS']))
    const env = { GATEHOUSE_DATABASE_POOL_SIZE: '6', GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS: '2500' }
    expect(databasePool(config({}, env), false)).toEqual({ poolSize: 6, statementTimeoutMs: 2500 })
    expect(() => config({}, { GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS: '10' })).toThrow(/GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS/)
    expect(() => config({ databasePoolSize: 1 }, {})).toThrow(expect.objectContaining({ code: 'GH_CONFIG_INVALID' }))
  })
})
