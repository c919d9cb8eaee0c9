import { join } from 'node:path'
import { availableParallelism, tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { shownRedisUrl } from '../../../broker/cluster.ts'
import { loadConfig } from '../../../config.ts'
import { workerCount } from '../../../gatehouse.ts'

const dataDir = join(tmpdir(), 'gatehouse-no-such-dir')

describe('cluster options', () => {
  it('ok/absent: one process (Mode 1), no cluster key', () => {
    expect(loadConfig({ dataDir }, {}).cluster).toBeUndefined()
  })

  it('ok/env: GATEHOUSE_CLUSTER_REDIS_URL sets cluster.redisUrl, and --cluster wins over it', () => {
    expect(loadConfig({ dataDir }, { GATEHOUSE_CLUSTER_REDIS_URL: 'redis://127.0.0.1:6379' }).cluster).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
    })
    const flagged = loadConfig(
      { dataDir, cluster: { redisUrl: 'rediss://r:6380' } },
      { GATEHOUSE_CLUSTER_REDIS_URL: 'redis://127.0.0.1:6379' },
    )
    expect(flagged.cluster?.redisUrl).toBe('rediss://r:6380')
  })

  it('fail/not-redis: a URL that is not redis:// or rediss:// stops start-up, naming the variable', () => {
    expect(() => loadConfig({ dataDir }, { GATEHOUSE_CLUSTER_REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(
      expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringContaining('GATEHOUSE_CLUSTER_REDIS_URL') }),
    )
  })

  it('ok/workers: GATEHOUSE_CLUSTER_WORKERS or --workers; one per core by default in a cluster, 1 without one', () => {
    const redisUrl = 'redis://127.0.0.1:6379'
    expect(workerCount(loadConfig({ dataDir, cluster: { redisUrl, workers: '3' } }, {}))).toBe(3)
    expect(workerCount(loadConfig({ dataDir, cluster: { redisUrl } }, { GATEHOUSE_CLUSTER_WORKERS: '2' }))).toBe(2)
    expect(workerCount(loadConfig({ dataDir, cluster: { redisUrl } }, {}))).toBe(availableParallelism())
    expect(workerCount(loadConfig({ dataDir }, {}))).toBe(1)
  })

  it('fail/workers-without-cluster: --workers without a Redis stops start-up, saying why', () => {
    for (const [flags, env] of [
      [{ dataDir, cluster: { workers: 2 } }, {}],
      [{ dataDir }, { GATEHOUSE_CLUSTER_WORKERS: '2' }],
    ] as const)
      expect(() => loadConfig(flags, env)).toThrow(
        expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringMatching(/needs cluster\.redisUrl .*through Redis/) }),
      )
    expect(() => loadConfig({ dataDir, cluster: { redisUrl: 'redis://r:1', workers: 0 } }, {})).toThrow(
      expect.objectContaining({ code: 'GH_CONFIG_INVALID', message: expect.stringContaining('workers') }),
    )
  })

  it('shows a Redis URL without its password or user name', () => {
    expect(shownRedisUrl('redis://:hunter2@127.0.0.1:6379/0')).toBe('redis://:***@127.0.0.1:6379/0')
    expect(shownRedisUrl('rediss://admin:hunter2@r.example:6380')).toBe('rediss://***:***@r.example:6380')
    expect(shownRedisUrl('not a url')).toBe('an unparseable URL')
  })
})
