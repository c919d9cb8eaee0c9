import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GATEHOUSE_BIN, runCli, type CliResult } from '../../helpers/run-cli.ts'
import { waitFor } from '../../helpers/wait.ts'
import { simGatehouse } from './gatehouse-fixture.ts'

/**
 * README "Try it with 50 simulated devices", command by command, against a real Gatehouse on its default
 * configuration (the AI bridge's local analyzer with its default windows and limits). The test reads the
 * commands from the README, so the README cannot drift from what is exercised here; only the data dir,
 * ports and a bounded --duration are added, as a test must.
 */
const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8')
const section = readme.slice(readme.indexOf('## Try it with 50 simulated devices'), readme.indexOf('## Device simulator'))

/**
 * `gatehouse sim` as its own process while `during` runs; then stopped as the README's reader stops it,
 * with Ctrl-C (SIGINT), once `until` holds on what it printed so far (its --duration stays the bound).
 */
function runSim(args: string[], during: () => Promise<void>, until: (stdout: string) => boolean): Promise<CliResult> {
  let stdout = ''
  let child: ReturnType<typeof execFile> | undefined
  const result = new Promise<CliResult>((resolve) => {
    child = execFile(
      process.execPath,
      [GATEHOUSE_BIN, 'sim', ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, GATEHOUSE_LOG_LEVEL: 'silent' }, timeout: 100_000 },
      (err, out, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: out, stderr }),
    )
    child.stdout?.on('data', (chunk: string) => void (stdout += chunk))
  })
  return during()
    .then(() => waitFor(() => until(stdout), 30_000, 'the sim to print what the test waits for'))
    .then(
      () => {
        child?.kill('SIGINT')
        return result
      },
      async (err: unknown) => {
        child?.kill('SIGKILL')
        await result
        throw err
      },
    )
}

describe('README walkthrough: 50 simulated devices, a setting changed from the API, insights', () => {
  it('runs every command of the walkthrough and sees the fleet apply the change and insights arrive', { timeout: 120_000 }, async () => {
    expect(section).toContain('npx gatehouse sim --devices 50 --provision')
    const apikeyLine = /KEY=\$\(npx gatehouse (apikey create [^)]+)\)/.exec(section)
    const patch = /curl -s -X PATCH http:\/\/127\.0\.0\.1:8080(\/v1\/groups\/sim\/settings)[\s\S]*?-d '([^']+)'/.exec(section)
    const insights = /curl -s 'http:\/\/127\.0\.0\.1:8080(\/v1\/devices\/sim-0001\/insights\?limit=1)'/.exec(section)
    expect(apikeyLine && patch && insights, 'the README walkthrough commands changed: update this test with them').toBeTruthy()
    const body = JSON.parse((patch as RegExpExecArray)[2] as string) as { interval: number; thresholds: { temperature: { max: number } } }

    const { gatehouse, broker, dataDir, dir } = await simGatehouse({ ai: {} })
    const ids = Array.from({ length: 50 }, (_, i) => `sim-${String(i + 1).padStart(4, '0')}`)
    const res = await runSim(
      ['--devices', '50', '--provision', '--data-dir', dataDir, '--bundles', join(dir, 'devices'), '--broker', broker, '--duration', '80s'],
      async () => {
        await waitFor(
          () => gatehouse.broker.connectedDeviceIds().length === 50,
          40_000,
          () => `50 connected; have ${gatehouse.broker.connectedDeviceIds().length}`,
          200,
        )
        const views = () => Promise.all(ids.map((id) => gatehouse.control.settings.getDevice(id)))
        await waitFor(async () => (await views()).every((view) => view.reported !== null), 20_000, 'every report', 200)

        const created = await runCli([...(apikeyLine as RegExpExecArray)[1]!.split(/\s+/), '--data-dir', dataDir])
        expect(created.code, created.stderr).toBe(0)
        const key = created.stdout.trim()
        const auth = { authorization: `Bearer ${key}` }
        const res = await fetch(gatehouse.http.url + (patch as RegExpExecArray)[1], {
          method: 'PATCH',
          headers: { ...auth, 'content-type': 'application/merge-patch+json' },
          body: JSON.stringify(body),
        })
        expect(res.status, await res.clone().text()).toBe(200)

        // every device applied the new document and reported it back
        await expect
          .poll(
            async () =>
              (await views()).every((view) => {
                return (
                  view.reported?.version === view.version && (view.reported.settings as { interval?: number }).interval === body.interval
                )
              }),
            { timeout: 20_000, interval: 250 },
          )
          .toBe(true)
        // insights from the local analyzer reach the API (and the devices: counted in the summary below)
        await expect
          .poll(
            async () => {
              const r = await fetch(gatehouse.http.url + (insights as RegExpExecArray)[1], { headers: auth })
              return r.status === 200 ? ((await r.json()) as unknown[] | { items?: unknown[] }) : null
            },
            { timeout: 30_000, interval: 500 },
          )
          .toSatisfy((v) => v !== null && (Array.isArray(v) ? v.length : (v.items ?? []).length) > 0)
      },
      (stdout) => /sim-\d{4} insight: /.test(stdout),
    )
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(/sim-\d{4} insight: /)
  })
})
