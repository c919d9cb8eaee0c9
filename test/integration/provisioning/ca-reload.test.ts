import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cryptoRandom, normalizeSerial, systemClock } from '../../../certs/index.ts'
import { createCaReloader } from '../../../provisioning/ca/reload.ts'
import { rotateIssuingCa } from '../../../provisioning/ca/rotation.ts'
import { dataDirLayout, initControlPlane, openControlPlane, rotateCa } from '../../../provisioning/index.ts'
import type { ServerTlsMaterial } from '../../../provisioning/ca/keystore.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/** A pino logger that keeps what it logs, to see errors reported. */
function recordingLog() {
  const lines: { level: number; msg: string; reason?: string }[] = []
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
    const summary = await rotateCa(dataDir, {}, { log: pino({ level: 'silent' }) }, 'op')
    reloader.onEvent({ type: 'ca.rotated', serial: summary.issuing.serial })
    reloader.onEvent({ type: 'device.created', deviceId: 'x' })
    await reloader.idle()
    expect(serialInUse()).toBe(summary.issuing.serial)
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'issuing CA reloaded', reason: 'ca.rotated' }))
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
