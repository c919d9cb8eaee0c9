import { AsyncLocalStorage } from 'node:async_hooks'
import { describe, expect, it, vi } from 'vitest'
import { TransactionGate } from '../../../../provisioning/store/transaction-gate.ts'

/** A gate over a log: what a database would have seen, in order. */
function logged() {
  const log: string[] = []
  const gate = new TransactionGate({
    begin: () => log.push('begin'),
    commit: () => log.push('commit'),
    rollback: () => log.push('rollback'),
  })
  const call = (what: string) => gate.run(() => log.push(what))
  return { gate, log, call }
}

/** a few turns of the microtask queue: what another async flow does at an await */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await Promise.resolve()
}

describe('TransactionGate', () => {
  it('runs a call at once when no transaction is open', async () => {
    const { log, call } = logged()
    const p = call('read')
    expect(log).toEqual(['read'])
    await p
  })

  it('serialises two transactions of two async flows: the second begins after the first commits', async () => {
    const { gate, log, call } = logged()
    const flow = (name: string) =>
      gate.transaction(async () => {
        await call(`${name}.1`)
        await turns()
        await call(`${name}.2`)
        return name
      })
    expect(await Promise.all([flow('a'), flow('b')])).toEqual(['a', 'b'])
    expect(log).toEqual(['begin', 'a.1', 'a.2', 'commit', 'begin', 'b.1', 'b.2', 'commit'])
  })

  it('holds a call from outside until the open transaction has ended', async () => {
    const { gate, log, call } = logged()
    let release = () => {}
    const held = new Promise<void>((r) => (release = r))
    const tx = gate.transaction(async () => {
      await call('inside.1')
      await held
      await call('inside.2')
    })
    const outside = call('outside')
    await turns()
    expect(log).toEqual(['begin', 'inside.1'])
    release()
    await Promise.all([tx, outside])
    expect(log).toEqual(['begin', 'inside.1', 'inside.2', 'commit', 'outside'])
  })

  it('rolls back and rethrows when fn throws, and lets the next caller in', async () => {
    const { gate, log, call } = logged()
    const failing = gate.transaction(async () => {
      await call('write')
      throw new Error('boom')
    })
    const after = call('after')
    await expect(failing).rejects.toThrow('boom')
    await after
    expect(log).toEqual(['begin', 'write', 'rollback', 'after'])
  })

  it('joins a nested transaction to the outer one', async () => {
    const { gate, log, call } = logged()
    const result = await gate.transaction(async () => {
      await call('outer')
      const inner = await gate.transaction(async () => {
        await call('inner')
        return gate.inTransaction()
      })
      return inner
    })
    expect(result).toBe(true)
    expect(log).toEqual(['begin', 'outer', 'inner', 'commit'])
    expect(gate.inTransaction()).toBe(false)
  })

  it('treats a flow started inside a transaction that runs after it ended as outside', async () => {
    const { gate, log, call } = logged()
    let later: Promise<unknown> = Promise.resolve()
    let go = () => {}
    const wait = new Promise<void>((r) => (go = r))
    await gate.transaction(async () => {
      later = wait.then(() => gate.transaction(async () => call('later')))
    })
    go()
    await later
    expect(log).toEqual(['begin', 'commit', 'begin', 'later', 'commit'])
  })

  it('tracks async flows only while a transaction is open (async hooks off between transactions), and still holds outside flows', async () => {
    const { gate, log, call } = logged()
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run')
    /** Node 20's AsyncLocalStorage: enabled from its first run() until disable(); while any is, every async callback pays the hooks */
    let flow: { enabled?: boolean } | undefined
    const tracking = () => (flow ??= run.mock.contexts[0] as { enabled?: boolean } | undefined)?.enabled
    let duringFirst: boolean | undefined
    let later: Promise<unknown> = Promise.resolve()
    let go = () => {}
    const wait = new Promise<void>((r) => (go = r))
    await gate.transaction(async () => {
      duringFirst = tracking()
      // a flow begun inside the first transaction that calls the store while a second one is open
      later = wait.then(() => call('straggler'))
    })
    run.mockRestore()
    expect(duringFirst).toBe(true)
    expect(tracking()).toBe(false)
    let release = () => {}
    const second = gate.transaction(async () => {
      log.push('second')
      go()
      await turns()
      await new Promise<void>((r) => (release = r))
    })
    await turns()
    expect(log).toEqual(['begin', 'commit', 'begin', 'second']) // the straggler waits for the second transaction
    release()
    await Promise.all([second, later])
    expect(log).toEqual(['begin', 'commit', 'begin', 'second', 'commit', 'straggler'])
    expect(tracking()).toBe(false)
  })

  it('leaves no transaction open when begin fails', async () => {
    const log: string[] = []
    let fail = true
    const gate = new TransactionGate({
      begin: () => {
        if (fail) throw new Error('locked')
        log.push('begin')
      },
      commit: () => log.push('commit'),
      rollback: () => log.push('rollback'),
    })
    await expect(gate.transaction(async () => log.push('never'))).rejects.toThrow('locked')
    fail = false
    await gate.transaction(async () => log.push('ran'))
    expect(log).toEqual(['begin', 'ran', 'commit'])
  })
})
