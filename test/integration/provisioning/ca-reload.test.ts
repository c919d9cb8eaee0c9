import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cryptoRandom, normalizeSerial, systemClock } from '../../../certs/index.ts'
import { createCaReloader } from '../../../provisioning/ca/reload.ts'
import { rotateIssuingCa } from '../../../provisioning/ca/rotation.ts'
import { planRotation } from '../../../provisioning/ca/rotation-journal.ts'
import {
  createChangeFeed,
  dataDirLayout,
  initControlPlane,
  keepCaCurrent,
  openControlPlane,
  rotateCa,
} from '../../../provisioning/index.ts'
import type { ServerTlsMaterial } from '../../../provisioning/ca/keystore.ts'
import { waitFor } from '../../helpers/wait.ts'
import { serialFirstByteRandom } from '../../helpers/random.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/** A pino logger that keeps what it logs, to see errors reported. */
function recordingLog() {
  const lines: { level: number; msg: string; reason?: string; serial?: string; previousSerial?: string }[] = []
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) })
  return { log, lines }
}

async function running() {
  const dataDir = join(tempDir(), 'data')
  const { log, lines } = recordingLog()
  await initControlPlane(dataDir, {}, { log }, 'op')
  const control = await openControlPlane(dataDir, {}, { log })
  onTestFinished(() => control.close())
  const applied: ServerTlsMaterial[] = []
  const reloader = createCaReloader({ control, dataDir, log, applyTls: (tls) => void applied.push(tls) })
  const serialInUse = () => normalizeSerial(control.authority.ca.issuing.certificate.serialNumber)
  return { dataDir, control, reloader, applied, lines, serialInUse }
}

describe('createCaReloader (how a running Gatehouse follows `ca rotate`)', () => {
  it('reloads the CA and the TLS material on a ca.rotated event', async () => {
    const { dataDir, reloader, applied, lines, serialInUse } = await running()
    const before = serialInUse()
    // a new issuing CA whose serial starts with a zero digit: its log line names it in the canonical form
    const random = serialFirstByteRandom(0x0a)
    const summary = await rotateCa(dataDir, {}, { log: pino({ level: 'silent' }), random }, 'op')
    expect(summary.issuing.serial).toMatch(/^a/)
    reloader.onEvent({ type: 'ca.rotated', serial: summary.issuing.serial })
    reloader.onEvent({ type: 'device.created', deviceId: 'x' })
    await reloader.idle()
    expect(serialInUse()).toBe(summary.issuing.serial)
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'issuing CA reloaded', reason: 'ca.rotated', serial: summary.issuing.serial, previousSerial: before }),
    )
    expect(applied).toHaveLength(1)
    expect(applied[0]!.ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(3)
  })

  it('finds a rotation whose event never came on its periodic check, and retries a failed reload', async () => {
    const { dataDir, reloader, applied, lines, serialInUse } = await running()
    const before = serialInUse()
    reloader.check()
    await reloader.idle()
    expect(applied).toHaveLength(0) // nothing changed on disk

    // the files of a rotation, without its registry event (a crash between the two)
    const result = await rotateIssuingCa(dataDir, {}, { clock: systemClock, random: cryptoRandom })
    const issuingKey = dataDirLayout(dataDir).issuingKey
    chmodSync(issuingKey, 0o644) // and a reload that fails
    reloader.check()
    await reloader.idle()
    expect(serialInUse()).toBe(before)
    expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: expect.stringContaining('CA reload failed') }))

    chmodSync(issuingKey, 0o600)
    reloader.check()
    await reloader.idle()
    expect(serialInUse()).toBe(normalizeSerial(result.issuing.serialNumber))
    expect(applied).toHaveLength(1)
  })
})

describe('a running Gatehouse and a `ca rotate` killed past its commit', () => {
  it('its periodic check finds the new CA and writes the audit entry and event the rotation lacks', async () => {
    const { dataDir, control, reloader, lines, serialInUse } = await running()
    const killed = new Error('killed before its audit entry')
    const rotation = rotateIssuingCa(
      dataDir,
      {},
      { clock: systemClock, random: cryptoRandom },
      {
        plan: (r) => planRotation(control.store, { ...r, actor: 'operator:killed', at: new Date().toISOString() }),
        record: () => Promise.reject(killed),
      },
    )
    await expect(rotation).rejects.toBe(killed)
    expect(await control.store.listAudit({ action: 'ca.rotated' })).toEqual([])
    const seq = await control.store.lastEventSeq()

    reloader.check()
    await reloader.idle()
    const [audit] = await control.store.listAudit({ action: 'ca.rotated' })
    expect(audit).toMatchObject({ actor: 'operator:killed', details: { serial: serialInUse(), recovered: true } })
    expect(await control.store.eventsAfter(seq, 10)).toEqual([
      expect.objectContaining({ type: 'ca.rotated', data: { serial: serialInUse() } }),
    ])
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('interrupted after its commit') }))
  })
})

describe('keepCaCurrent (what startGatehouse wires for the CA)', () => {
  it("reloads on the change feed's ca.rotated and on its hourly check, and stops both on close", async () => {
    const { dataDir, control, serialInUse } = await running()
    const log = pino({ level: 'silent' })
    const feed = await createChangeFeed({ store: control.store, clock: systemClock, log })
    let hourly: { ms: number; fn: () => void } | undefined
    let stopped = false
    const scheduler = {
      every(ms: number, fn: () => void) {
        hourly = { ms, fn }
        return () => void (stopped = true)
      },
    }
    const { log: caLog, lines } = recordingLog()
    const applied: ServerTlsMaterial[] = []
    const keeper = keepCaCurrent({ control, feed, dataDir, log: caLog, scheduler, applyTls: (tls) => void applied.push(tls) })
    expect(hourly?.ms).toBe(3600_000)

    const rotated = await rotateCa(dataDir, {}, { log }, 'op')
    await feed.poll() // the event another process's `ca rotate` wrote
    const reloads = () => lines.filter((l) => l.msg === 'issuing CA reloaded').map((l) => l.reason)
    await waitFor(() => reloads().length === 1, 5000, 'reload on ca.rotated') // logged after the TLS material is applied
    expect(serialInUse()).toBe(rotated.issuing.serial)

    const files = await rotateIssuingCa(dataDir, {}, { clock: systemClock, random: cryptoRandom }) // no event: a crash before it
    hourly!.fn()
    await waitFor(() => reloads().length === 2, 5000, 'reload on the hourly check')
    expect(serialInUse()).toBe(normalizeSerial(files.issuing.serialNumber))
    expect(reloads()).toEqual(['ca.rotated', 'check'])
    expect(applied).toHaveLength(2)

    await keeper.close()
    expect(stopped).toBe(true)
  })
})
