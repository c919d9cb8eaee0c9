import { describe, expect, it } from 'vitest'
import { countBy, createBrokerStats, MAX_COUNTER_KEYS } from '../../../broker/broker-stats.ts'
import { TOPIC_CLASSES, topicClassOf } from '../../../broker/topics.ts'

describe('broker stats', () => {
  it('start at zero for every topic class', () => {
    const stats = createBrokerStats()
    expect(Object.keys(stats.publishesIn)).toEqual([...TOPIC_CLASSES])
    expect(Object.values(stats.messagesOut).every((n) => n === 0)).toBe(true)
  })

  it('count new keys under "other" once the cap is reached, and known keys as before', () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < MAX_COUNTER_KEYS + 10; i++) countBy(counts, `code-${i}`)
    countBy(counts, 'code-0')
    expect(counts.size).toBe(MAX_COUNTER_KEYS + 1)
    expect(counts.get('other')).toBe(10)
    expect(counts.get('code-0')).toBe(2)
  })

  it.each([
    ['telemetry', 'telemetry'],
    ['settings', 'settings'],
    ['settings.reported', 'settings'],
    ['insights', 'insights'],
    ['renewal.request', 'renewal'],
    ['renewal.response', 'renewal'],
  ] as const)('ok/%s is class %s', (kind, cls) => {
    expect(topicClassOf(kind)).toBe(cls)
  })
})
