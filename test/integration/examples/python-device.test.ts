import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from '../../helpers/run-cli.ts'
import { waitFor } from '../../helpers/wait.ts'
import { recordTelemetry, simGatehouse } from '../device-sim/gatehouse-fixture.ts'

// examples/python/gatehouse_device.py against a real Gatehouse: Debian's python3 with paho-mqtt and
// cryptography (the pyenv python3 on PATH has neither), as .ci/run installs them.
const PYTHON = '/usr/bin/python3'
const SCRIPT = new URL('../../../examples/python/gatehouse_device.py', import.meta.url).pathname
const probe = spawnSync(PYTHON, ['-c', 'import paho.mqtt.client, cryptography'], { encoding: 'utf8' })
const missing = probe.error || probe.status !== 0 ? `${PYTHON} with paho-mqtt and cryptography is not available` : null
if (missing && process.env.CI) throw new Error(`${missing}: apt-get install python3-paho-mqtt python3-cryptography`)
if (missing) console.warn(`skipping the Python device example: ${missing}`)

describe.skipIf(missing !== null)('examples/python: a device in Python with paho-mqtt', () => {
  it('claims itself, sends telemetry, applies and reports settings, renews on the notice and reconnects on the new certificate', async () => {
    // renewalWindow 1: a new certificate is in its window at once, so the notice comes on connect
    const { gatehouse, dataDir, dir, broker } = await simGatehouse({ renewalWindow: 1 })
    await gatehouse.control.settings.patchLayer({ kind: 'fleet' }, { rate: 5 }, { actor: 'operator:test' })
    const claims = join(dir, 'claims')
    const made = await runCli(['claim', 'create', '--group', 'pumps', '--max-uses', '1', '--out', claims, '--data-dir', dataDir])
    expect(made.code, made.stderr).toBe(0)
    const [claimId] = readdirSync(claims).filter((n) => !n.startsWith('.'))
    const telemetry = recordTelemetry(gatehouse)

    const port = String(new URL(broker).port)
    const args = ['--port', port, '--device-id', 'py-pump-1', '--claim-dir', join(claims, claimId!), '--state-dir', join(dir, 'py-state')]
    const child = spawn(PYTHON, [SCRIPT, ...args, '--telemetry', '5', '--interval', '0.1', '--run-seconds', '3'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')))
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    const events = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown })
    expect(code, `${out}\n${err}`).toBe(0)
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(['claimed', 'connected', 'settings', 'renewal-notice', 'renewed', 'done']),
    )
    expect(events.filter((e) => e.event === 'connected')).toHaveLength(2) // before and after the renewal
    expect(events.find((e) => e.event === 'settings')).toMatchObject({ settings: { rate: 5 } })

    // the registry: claimed into the claim's group, two certificates, the report stored
    expect(await gatehouse.control.store.getDevice('py-pump-1')).toMatchObject({ group: 'pumps', status: 'active' })
    expect(await gatehouse.control.store.listCertificates('py-pump-1')).toHaveLength(2)
    await waitFor(async () => (await gatehouse.control.settings.getDevice('py-pump-1')).reported !== null, 5000, 'the settings report')
    expect(telemetry.readings('py-pump-1').map((r) => r.seq)).toEqual([1, 2, 3, 4, 5])
  })
})
