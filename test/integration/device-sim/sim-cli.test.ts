import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GATEHOUSE_BIN, runCli, type CliResult } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'
import { waitFor } from '../../helpers/wait.ts'
import { simGatehouse } from './gatehouse-fixture.ts'

/** `gatehouse sim` as its own process (the real binary), bounded; `during` runs while it does. */
async function runSim(args: string[], during?: () => Promise<void>): Promise<CliResult> {
  let child: ReturnType<typeof execFile> | undefined
  const result = new Promise<CliResult>((resolve) => {
    child = execFile(
      process.execPath,
      [GATEHOUSE_BIN, 'sim', ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_LOG_LEVEL: 'silent' }, timeout: 50_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    )
  })
  try {
    await during?.()
  } catch (err) {
    child?.kill('SIGKILL')
    await result
    throw err
  }
  return result
}

async function freePortThatIsClosed(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  await new Promise((r) => server.close(r))
  return port
}

describe('gatehouse sim (the command, as its own process)', () => {
  it('provisions sim-0001..N through the control plane, runs them for --duration, applies a group settings change, and prints a JSON summary', async () => {
    const { gatehouse, broker, dataDir, dir } = await simGatehouse()
    const bundles = join(dir, 'devices')
    const res = await runSim(
      [
        '--devices',
        '3',
        '--provision',
        '--data-dir',
        dataDir,
        '--bundles',
        bundles,
        '--broker',
        broker,
        '--rate',
        '5',
        '--duration',
        '6s',
        '--json',
      ],
      async () => {
        await waitFor(
          () => gatehouse.broker.connectedDeviceIds().length === 3,
          20_000,
          () => `3 connected; have ${gatehouse.broker.connectedDeviceIds().length}`,
          100,
        )
        // each has applied and reported the document it got on subscribe: the change below is a second one
        const ids = ['sim-0001', 'sim-0002', 'sim-0003']
        await waitFor(
          async () =>
            (await Promise.all(ids.map((id) => gatehouse.control.settings.getDevice(id)))).every((view) => view.reported !== null),
          10_000,
          'every report',
          100,
        )
        await gatehouse.control.settings.patchLayer({ kind: 'group', group: 'sim' }, { interval: 0.2 }, { actor: 'operator:test' })
      },
    )
    expect(res.code, res.stderr).toBe(0)
    const summary = JSON.parse(res.stdout) as Record<string, number>
    expect(summary).toMatchObject({
      devices: 3,
      connected: 3,
      everConnected: 3,
      errors: 0,
      dropped: 0,
      durationSeconds: expect.any(Number),
    })
    for (const k of ['sent', 'acked', 'settingsApplied', 'insights', 'alerts', 'renewals', 'reconnects', 'messagesPerSecond'])
      expect(summary[k]).toEqual(expect.any(Number))
    expect(summary.sent).toBeGreaterThan(10)
    expect(summary.acked).toBe(summary.sent)
    // the document on subscribe, then the group change, per device
    expect(summary.settingsApplied).toBe(6)

    // created like `device create`: registered in group sim, bundle folders with a 0600 key
    expect(await gatehouse.control.store.getDevice('sim-0002')).toMatchObject({ group: 'sim', status: 'active' })
    for (const id of ['sim-0001', 'sim-0002', 'sim-0003']) {
      for (const f of ['cert.pem', 'key.pem', 'ca.pem']) expect(existsSync(join(bundles, id, f))).toBe(true)
      expect(statSync(join(bundles, id, 'key.pem')).mode & 0o777).toBe(0o600)
    }
    expect((await gatehouse.control.settings.getDevice('sim-0003')).reported?.version).toBe(
      (await gatehouse.control.settings.getDevice('sim-0003')).version,
    )

    // a second run reuses the bundle folders (no GH_DEVICE_EXISTS) and provisions only what is missing
    const again = await runSim([
      '--devices',
      '4',
      '--provision',
      '--data-dir',
      dataDir,
      '--bundles',
      bundles,
      '--broker',
      broker,
      '--duration',
      '2s',
      '--json',
    ])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).toContain('provisioning 1 devices (sim-0004..sim-0004)')
    expect(JSON.parse(again.stdout)).toMatchObject({ devices: 4, everConnected: 4 })
  })

  it('runs the bundles it finds in --bundles, printing a summary line on stderr and a text summary', async () => {
    const { broker, dataDir, dir } = await simGatehouse()
    const bundles = join(dir, 'devices')
    for (const id of ['pump-1', 'pump-2'])
      expect((await runCli(['device', 'create', id, '--out', bundles, '--data-dir', dataDir])).code).toBe(0)
    const res = await runSim([
      '--devices',
      '5',
      '--bundles',
      bundles,
      '--broker',
      broker,
      '--rate',
      '10',
      // long enough for a report line after both devices connected and applied their settings on a loaded box
      '--duration',
      '6s',
      '--report-every',
      '1',
    ])
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toContain('only 2 device bundles')
    expect(res.stderr).toMatch(
      /sim \d+s: connected 2\/2, [\d.]+ msg\/s, sent \d+, settings applied 2, insights \d+, alerts \d+, renewals 0, errors 0/,
    )
    expect(res.stdout).toMatch(/sim: 2 devices against mqtts:\/\/127\.0\.0\.1:\d+/)
    expect(res.stdout).toMatch(/connected\s+2\/2 at the end/)
  })

  it('exits 1 with what to do when there are no bundles, or when no device could connect', async () => {
    const empty = join(tempDir(), 'devices')
    mkdirSync(empty)
    const none = await runCli(['sim', '--devices', '2', '--bundles', empty])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/^error GH_SIM_NO_BUNDLES: .*--provision/m)
    const noClaim = await runCli(['sim', '--devices', '1', '--claim', empty, '--bundles', empty])
    expect(noClaim.code).toBe(1)
    expect(noClaim.stderr).toMatch(/^error GH_SIM_CLAIM_UNREADABLE: .*cert\.pem: ENOENT/m)

    const { dataDir, dir } = await simGatehouse()
    const bundles = join(dir, 'devices')
    expect((await runCli(['device', 'create', 'pump-1', '--out', bundles, '--data-dir', dataDir])).code).toBe(0)
    const port = await freePortThatIsClosed()
    const res = await runSim([
      '--devices',
      '1',
      '--bundles',
      bundles,
      '--broker',
      `mqtts://127.0.0.1:${port}`,
      '--duration',
      '2s',
      '--json',
    ])
    expect(res.code).toBe(1)
    expect(JSON.parse(res.stdout)).toMatchObject({ devices: 1, everConnected: 0, sent: 0 })
    // --json: the error is JSON on stderr too
    expect(JSON.parse(res.stderr.trim().split('\n').at(-1) ?? '')).toMatchObject({
      code: 'GH_SIM_NOT_CONNECTED',
      message: expect.stringMatching(/ECONNREFUSED.*check that Gatehouse is running/),
    })
  })

  it('--provision refuses bundle folders another CA issued (a fresh init, another --data-dir), naming the folder and what to do', async () => {
    const dir = tempDir()
    const [a, b, bundles] = [join(dir, 'a'), join(dir, 'b'), join(dir, 'devices')]
    for (const d of [a, b]) expect((await runCli(['init', '--data-dir', d])).code).toBe(0)
    expect((await runCli(['device', 'create', 'sim-0001', '--out', bundles, '--data-dir', a])).code).toBe(0)
    const port = await freePortThatIsClosed()
    const args = ['sim', '--devices', '2', '--provision', '--bundles', bundles, '--broker', `mqtts://127.0.0.1:${port}`, '--duration', '2s']
    const res = await runCli([...args, '--data-dir', b])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(
      /^error GH_SIM_BUNDLE_STALE: .*sim-0001 \(its certificate was not issued by this data directory.*Move those folders away/m,
    )
    expect(existsSync(join(bundles, 'sim-0002'))).toBe(false) // nothing provisioned
    // with the data directory that issued it, the folder is reused (and sim-0002 provisioned)
    const same = await runCli([...args, '--data-dir', a])
    expect(same.stderr).not.toMatch(/GH_SIM_BUNDLE_STALE/)
    expect(same.stderr).toMatch(/provisioning 1 devices \(sim-0002\.\.sim-0002\)/)
  })

  it('refuses bad arguments as usage errors (exit 2)', async () => {
    expect((await runCli(['sim'])).code).toBe(2)
    expect((await runCli(['sim', '--devices', '0'])).code).toBe(2)
    expect((await runCli(['sim', '--devices', '1', '--duration', 'soon'])).code).toBe(2)
    expect((await runCli(['sim', '--devices', '1', '--qos', '2'])).code).toBe(2)
    expect((await runCli(['sim', '--devices', '1', '--provision', '--claim', 'x'])).code).toBe(2)
    const url = await runCli(['sim', '--devices', '1', '--broker', 'mqtt://localhost:1883'])
    expect(url.stderr).toContain('GH_SIM_BROKER_URL_INVALID')
  })
})
