import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * The load generator's own garbage must not land in the next measurement: after a storm of 2,000
 * clients, V8's major GC of the closed clients ran during the next case's unloaded connects and
 * made the first of them 3-5x slower, whichever broker came next. `npm run bench` runs without
 * --expose-gc, so the gc function is fetched at run time.
 */
const gc: (() => void) | null = (() => {
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  } catch {
    return null
  }
})()

/** Collects the bench process's garbage (not the broker's), then lets the machine settle for `ms`. */
export async function settle(ms: number): Promise<void> {
  gc?.()
  await new Promise((r) => setTimeout(r, ms))
}
