import { createDailyBudgets } from '../../../broker/ai-bridge/budgets.ts'
import { systemClock } from '../../../certs/index.ts'
import { createAiUsageService } from '../../../provisioning/ai-usage/ai-usage-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'

/**
 * A broker process's daily budgets on a shared SQLite registry, as a child process of
 * budget-persistence.test.ts: node --import tsx budget-spender.ts DB DEVICE DAY DAILY_REQUESTS FLUSH_MS MODE
 *   until-refused: takes requests (10 tokens each) until the budget refuses, flushes, prints 'done <taken>'
 *   until-killed:  takes requests and prints 'took <requests> <tokens>' each, and 'flushed <requests> <tokens>'
 *                  after each flush every FLUSH_MS, until it is killed (or 100,000 requests: bounded)
 */
const [db = '', deviceId = '', day = '', daily = '0', flushMs = '1000', mode = 'until-refused'] = process.argv.slice(2)
const store = new SqliteRegistryStore(db)
const usage = createAiUsageService({ store: store.aiUsage, clock: systemClock })
const budgets = createDailyBudgets(usage, { maxTrackedDevices: 10 })
const limits = { dailyRequests: Number(daily), dailyTokens: Number.MAX_SAFE_INTEGER }
let taken = 0

if (mode === 'until-killed') {
  const flushLoop = async (): Promise<void> => {
    const counted = taken
    await budgets.flush()
    process.stdout.write(`flushed ${counted} ${counted * 10}\n`)
    setTimeout(flushLoop, Number(flushMs))
  }
  setTimeout(flushLoop, Number(flushMs))
}

while (taken < 100_000) {
  if ((await budgets.take(deviceId, day, limits)) !== 'ok') break
  budgets.spend(deviceId, day, 10)
  taken++
  if (mode === 'until-killed') {
    process.stdout.write(`took ${taken} ${taken * 10}\n`)
    await new Promise((r) => setImmediate(r)) // lets the flush timer run
  }
}
await budgets.flush()
store.close()
process.stdout.write(`done ${taken}\n`)
