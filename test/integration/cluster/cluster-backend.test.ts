import type { Redis } from 'ioredis'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectCluster } from '../../../broker/index.ts'
import { type RedisServer, redisAvailable, startRedis } from '../../helpers/redis-server.ts'
import { waitFor } from '../../helpers/wait.ts'

type Packet = { topic: string; payload: Buffer }
interface Mq {
  on(topic: string, listener: (packet: Packet, done: () => void) => void, done: () => void): void
  emit(packet: Packet): void
  close(done: () => void): void
  pubConn: Redis
}

/**
 * The cluster's Redis connections batch what one turn of the event loop sends (ioredis auto-pipelining;
 * bench/README.md, "Cluster": a socket write per PUBLISH was the largest frame of a node under load), and
 * the order of the messages and the answers to the commands stay what they were.
 */
describe.skipIf(!redisAvailable())('cluster backend on a real Redis', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('the PUBLISHes and commands of one turn wait in one pipeline, and arrive in order with their answers', async () => {
    const backend = await connectCluster({ redisUrl: server.url }, { log: pino({ level: 'silent' }) })
    const mq = backend.mq as Mq
    try {
      const got: string[] = []
      await new Promise<void>((resolve) =>
        mq.on(
          'pipelined/x',
          (packet, done) => {
            got.push(packet.payload.toString())
            done()
          },
          resolve,
        ),
      )
      const sent = Array.from({ length: 20 }, (_, i) => String(i))
      for (const payload of sent) mq.emit({ topic: 'pipelined/x', payload: Buffer.from(payload) })
      expect(mq.pubConn.autoPipelineQueueSize).toBe(20)
      await waitFor(() => got.length === sent.length, 5000, 'the 20 messages back from Redis')
      expect(got).toEqual(sent)

      const answers = Promise.all([
        backend.redis.set('pipelined:k', 'v'),
        backend.redis.get('pipelined:k'),
        backend.redis.del('pipelined:k'),
      ])
      expect(backend.redis.autoPipelineQueueSize).toBe(3)
      expect(await answers).toEqual(['OK', 'v', 1])
    } finally {
      await new Promise<void>((resolve) => mq.close(resolve))
      await backend.close()
    }
  })
})
