import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createAiUsageService } from '../../../provisioning/ai-usage/ai-usage-service.ts'
import { SqliteRegistryStore } from '../../../provisioning/store/sqlite-registry-store.ts'
import { systemClock } from '../../../certs/index.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'

const SPENDER = join(import.meta.dirname, 'budget-spender.ts')
const DAY = '2026-03-01'

/** budget-spender.ts in its own process on the registry at `db`; its stdout lines as they come */
function spender(db: string, daily: number, flushMs: number, mode: 'until-refused' | 'until-killed') {
  const child = spawn(process.execPath, ['--import', 'tsx', SPENDER, db, 'd1', DAY, String(daily), String(flushMs), mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let stderr = ''
  let partial = ''
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
  })
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  onTestFinished(() => void child.kill('SIGKILL'))
  return { child, lines, exited, stderr: () => stderr }
}

async function usageOf(db: string) {
  const store = new SqliteRegistryStore(db)
  try {
    return await createAiUsageService({ store: store.aiUsage, clock: systemClock }).get('d1', DAY)
  } finally {
    store.close()
  }
}

describe('daily AI budgets leased from one SQLite registry by several processes', () => {
  it('three processes spending one budget at once never spend more than it together', async () => {
    const db = join(tempDir(), 'registry.db')
    new SqliteRegistryStore(db).close() // migrated once, before the three open it
    const daily = 600 // slices of 6
    const runs = [0, 1, 2].map(() => spender(db, daily, 1000, 'until-refused'))
    const codes = await Promise.all(runs.map((r) => r.exited))
    expect(codes, runs.map((r) => r.stderr()).join('\n')).toEqual([0, 0, 0])
    const taken = runs.map((r) => Number(r.lines.find((l) => l.startsWith('done '))?.slice(5)))
    const total = taken.reduce((a, b) => a + b, 0)
    expect(total).toBeLessThanOrEqual(daily)
    expect(total).toBeGreaterThanOrEqual(daily - 3 * 6) // at most a slice each left unspent when refused
    expect((await usageOf(db)).requests).toBe(total) // the unspent slices went back on the last flush
  })

  it('a SIGKILL loses at most the tokens counted since the last flush, and no request', async () => {
    const db = join(tempDir(), 'registry.db')
    new SqliteRegistryStore(db).close()
    const run = spender(db, 1_000_000, 50, 'until-killed')
    // two flushes, and requests after the last one
    await waitFor(
      () => run.lines.filter((l) => l.startsWith('flushed ')).length >= 2,
      30_000,
      () => `two flushes: ${run.stderr()}`,
    )
    const flushedAt = run.lines.length
    await waitFor(() => run.lines.length > flushedAt + 5, 30_000, 'requests after the flush')
    run.child.kill('SIGKILL')
    await run.exited
    const took = run.lines.filter((l) => l.startsWith('took ')).map((l) => l.split(' ').map(Number))
    const flushed = run.lines.filter((l) => l.startsWith('flushed ')).map((l) => l.split(' ').map(Number))
    const [, requests = 0, tokens = 0] = took.at(-1) ?? []
    const [, , flushedTokens = 0] = flushed.at(-1) ?? []
    const after = await usageOf(db)
    // requests are counted when leased: none is lost; the unspent part of the last slice (10,000 a slice here) stays counted
    expect(after.requests).toBeGreaterThanOrEqual(requests)
    expect(after.requests).toBeLessThanOrEqual(requests + 100)
    // tokens are written behind: what was flushed is there, at most what was spent
    expect(after.tokens).toBeGreaterThanOrEqual(flushedTokens)
    expect(after.tokens).toBeLessThanOrEqual(tokens)
  })
})
