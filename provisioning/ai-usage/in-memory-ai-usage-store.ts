import type { AiUsageLease, AiUsageRecord, AiUsageSettlement, AiUsageStore, StoredInsight } from '../store/ai-usage-store.ts'

/** AiUsageStore in Maps: the test twin of SqliteAiUsageStore (docs/conventions.md §13-14). */
export class InMemoryAiUsageStore implements AiUsageStore {
  readonly #usage = new Map<string, AiUsageRecord>()
  readonly #insights = new Map<string, StoredInsight[]>()

  #get(deviceId: string, day: string): AiUsageRecord | undefined {
    const r = this.#usage.get(`${deviceId}\n${day}`)
    return r && { ...r }
  }

  async getUsage(deviceId: string, day: string): Promise<AiUsageRecord | undefined> {
    return this.#get(deviceId, day)
  }

  async addUsage(deviceId: string, day: string, requests: number, tokens: number): Promise<void> {
    const key = `${deviceId}\n${day}`
    const r = this.#usage.get(key) ?? { deviceId, day, requests: 0, tokens: 0 }
    this.#usage.set(key, { ...r, requests: r.requests + requests, tokens: r.tokens + tokens })
  }

  /** read and write with no await between them: atomic on the one event loop */
  async leaseRequests(deviceId: string, day: string, requests: number, maxRequests: number): Promise<AiUsageLease> {
    const r = this.#get(deviceId, day) ?? { deviceId, day, requests: 0, tokens: 0 }
    const granted = Math.max(0, Math.min(requests, maxRequests - r.requests))
    this.#usage.set(`${deviceId}\n${day}`, { ...r, requests: r.requests + granted })
    return { granted, requests: r.requests + granted, tokens: r.tokens }
  }

  async settleUsage(settlements: readonly AiUsageSettlement[]): Promise<void> {
    for (const { deviceId, day, returnedRequests, tokens } of settlements) {
      const r = this.#get(deviceId, day) ?? { deviceId, day, requests: 0, tokens: 0 }
      this.#usage.set(`${deviceId}\n${day}`, { ...r, requests: Math.max(0, r.requests - returnedRequests), tokens: r.tokens + tokens })
    }
  }

  async listUsage(deviceId: string, fromDay: string, toDay: string): Promise<AiUsageRecord[]> {
    return [...this.#usage.values()]
      .filter((r) => r.deviceId === deviceId && r.day >= fromDay && r.day <= toDay)
      .sort((a, b) => a.day.localeCompare(b.day))
      .map((r) => ({ ...r }))
  }

  async pruneUsage(beforeDay: string): Promise<number> {
    let n = 0
    for (const [k, r] of this.#usage) if (r.day < beforeDay && this.#usage.delete(k)) n++
    return n
  }

  async appendInsights(insights: readonly StoredInsight[], keepPerDevice: number): Promise<void> {
    for (const insight of insights) this.#appendInsight(insight, keepPerDevice)
  }

  #appendInsight(insight: StoredInsight, keepPerDevice: number): void {
    const list = (this.#insights.get(insight.deviceId) ?? []).filter((i) => i.id !== insight.id)
    list.push(structuredClone(insight))
    // newest last; equal times keep insertion order, as SQLite's rowid does
    list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
    this.#insights.set(insight.deviceId, list.slice(Math.max(0, list.length - keepPerDevice)))
  }

  async listInsights(deviceId: string, limit: number): Promise<StoredInsight[]> {
    return (this.#insights.get(deviceId) ?? [])
      .slice(-limit)
      .reverse()
      .map((i) => structuredClone(i))
  }
}
