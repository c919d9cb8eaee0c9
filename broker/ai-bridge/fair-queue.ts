/**
 * Per-device fair queueing: one bounded FIFO per device and a round-robin over the devices that have
 * work, so that one device's flood waits behind itself, not in front of everyone else. A device is
 * "busy" from take() until release(): its messages are handled one at a time, in order, while other
 * devices proceed. push/take/release are O(1).
 */
export interface FairQueue<T> {
  /**
   * Appends an item to a key's FIFO: 'full' when `maxTotal` items wait in all, 'key-full' when
   * `maxPerKey` wait for this key (nothing is queued then). `force` ignores both bounds (internal work
   * that is bounded elsewhere, such as one window flush per device).
   */
  push(key: string, item: T, force?: boolean): 'queued' | 'full' | 'key-full'
  /** The next item in round-robin order among keys that are not busy; that key is busy until release(). */
  take(): { key: string; item: T } | undefined
  release(key: string): void
  /** true when nothing of `key` waits or runs: an item handled at once would not overtake one of the queue */
  idle(key: string): boolean
  /** items waiting (not taken) */
  size(): number
  /** empties the queue and returns what was waiting */
  clear(): T[]
}

export class Fifo<T> {
  #items: T[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head] as T
    this.#items[this.#head] = undefined as T // let it be collected
    this.#head++
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  toArray(): T[] {
    return this.#items.slice(this.#head)
  }
}

interface Lane<T> {
  items: Fifo<T>
  busy: boolean
  ready: boolean
}

export function createFairQueue<T>(options: { maxTotal: number; maxPerKey: number }): FairQueue<T> {
  const lanes = new Map<string, Lane<T>>()
  const ready = new Fifo<string>()
  let total = 0

  function markReady(key: string, lane: Lane<T>): void {
    if (lane.busy || lane.ready || lane.items.length === 0) return
    lane.ready = true
    ready.push(key)
  }

  return {
    push(key, item, force = false) {
      let lane = lanes.get(key)
      if (!force && total >= options.maxTotal) return 'full'
      if (!force && lane && lane.items.length >= options.maxPerKey) return 'key-full'
      if (!lane) {
        lane = { items: new Fifo<T>(), busy: false, ready: false }
        lanes.set(key, lane)
      }
      lane.items.push(item)
      total++
      markReady(key, lane)
      return 'queued'
    },
    take() {
      for (;;) {
        const key = ready.shift()
        if (key === undefined) return undefined
        const lane = lanes.get(key)
        if (!lane) continue
        lane.ready = false
        const item = lane.items.shift()
        if (item === undefined) continue
        total--
        lane.busy = true
        return { key, item }
      }
    },
    release(key) {
      const lane = lanes.get(key)
      if (!lane) return
      lane.busy = false
      if (lane.items.length === 0) lanes.delete(key)
      else markReady(key, lane)
    },
    idle: (key) => !lanes.has(key),
    size: () => total,
    clear() {
      const out: T[] = []
      for (const lane of lanes.values()) out.push(...lane.items.toArray())
      lanes.clear()
      while (ready.shift() !== undefined);
      total = 0
      return out
    },
  }
}
