import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { loadConfig, type ConfigInput } from '../../../config.ts'
import { startGatehouse, type Gatehouse } from '../../../gatehouse.ts'
import { openControlPlane, type ControlPlane } from '../../../provisioning/index.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts'

export interface ClusterWorld {
  dataDir: string
  redis: RedisServer
  /** nodes A, B, C: three startGatehouse on one Redis and one data directory */
  nodes: Gatehouse[]
  /** the operator's control plane on the same data directory */
  operator: ControlPlane
  provision(id: string): Promise<DeviceCredentials>
  /** closes node i and starts a new one in its place (new ports), with `more` configuration on top of the world's */
  restartNode(i: number, more?: ConfigInput): Promise<void>
  close(): Promise<void>
}

/**
 * Three Gatehouse nodes on one Redis and one data directory (README "Running a cluster": several
 * `gatehouse start --cluster` on one box), with `extra` configuration on each; with `extra.databaseUrl`
 * the nodes and the operator share that PostgreSQL registry instead of the SQLite file. Built once per file
 * (beforeAll) and closed in afterAll: starting nodes costs more than the tests.
 */
export async function startClusterWorld(extra: ConfigInput = {}): Promise<ClusterWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'))
  const dataDir = join(dir, 'data')
  const redis = await startRedis()
  const log = pino({ level: 'silent' })
  const nodes: Gatehouse[] = []
  let operator: ControlPlane | undefined
  const close = async () => {
    for (const node of nodes.reverse()) await node.close()
    await operator?.close()
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const startNode = (more: ConfigInput = {}) =>
    startGatehouse(
      loadConfig({ dataDir, mqttPort: 0, httpPort: 0, aiEnabled: false, cluster: { redisUrl: redis.url }, ...extra, ...more }, {}),
      { log },
    )
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startNode())
    operator = await openControlPlane(
      dataDir,
      {},
      { log, ...(typeof extra.databaseUrl === 'string' && { databaseUrl: extra.databaseUrl }) },
    )
  } catch (err) {
    await close()
    throw err
  }
  const control = operator
  return {
    dataDir,
    redis,
    nodes,
    operator: control,
    async provision(id) {
      const issued = await control.authority.createDevice({ id }, 'operator:test')
      return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
    },
    async restartNode(i, more) {
      await nodes[i]?.close()
      nodes[i] = await startNode(more)
    },
    close,
  }
}

/** How many nodes hold a live session of this device. */
export function liveSessions(world: ClusterWorld, deviceId: string): number {
  return world.nodes.filter((n) => n.broker.isConnected(deviceId)).length
}
