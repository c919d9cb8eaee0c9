import { cpSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startGatehouseProcess } from '../../helpers/gatehouse-process.ts'
import { connectDevice, readBundleCredentials } from '../../helpers/mqtt-clients.ts'
import { spawnCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const root = resolve(import.meta.dirname, '../../..')
const VERSION: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
const dist = { GATEHOUSE_CLI: 'dist' }

// what npm installs: `gatehouse` runs the bundle in dist/bundle/ (bin/build.js); `npm run test:cli-dist`
describe.runIf(process.env.GATEHOUSE_CLI === 'dist')('the bundled CLI (dist/bundle/, issue 14)', () => {
  it('gatehouse start serves from the bundle: a device connects with mTLS, the dashboard assets and the version are found', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'data')
    const gatehouse = await startGatehouseProcess(dataDir, dist, ['--metrics-port', '0'])
    const created = await spawnCli(['device', 'create', 'bundled-1', '--out', join(dir, 'out'), '--data-dir', dataDir], { env: dist })
    expect(created.code, created.stderr).toBe(0)
    const client = await connectDevice(gatehouse.port, readBundleCredentials(join(dir, 'out'), 'bundled-1'))
    expect(client.connected).toBe(true)

    const api = /HTTP API on (http:\/\/127\.0\.0\.1:\d+)/.exec(gatehouse.stderr())?.[1]
    const metrics = /metrics on (http:\/\/127\.0\.0\.1:\d+\S*);/.exec(gatehouse.stderr())?.[1]
    expect(api && metrics, gatehouse.stderr()).toBeTruthy()
    // the dashboard's own files (read by path beside the code) and uPlot (resolved from node_modules)
    const own = await fetch(`${api}/dashboard/assets/common.js`)
    expect(own.status).toBe(200)
    expect(await own.text()).toBe(readFileSync(join(root, 'provisioning/dashboard/assets/common.js'), 'utf8'))
    const uplot = await fetch(`${api}/dashboard/assets/uplot.min.js`)
    expect(uplot.status).toBe(200)
    expect(await uplot.text()).toBe(readFileSync(join(root, 'node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8'))
    // package.json's version, read by path at start
    expect(await (await fetch(metrics as string)).text()).toContain(`gatehouse_build_info{version="${VERSION}"`)
  })

  it('--version prints package.json version', async () => {
    const run = await spawnCli(['--version'], { env: dist })
    expect(run).toMatchObject({ code: 0, stdout: `${VERSION}\n` })
  })

  it('runs only while dist/ is at least as new as every source: an edited or added source file makes it refuse (GATEHOUSE_CLI=dist)', async () => {
    // a copy of the checkout with the build's times kept, so that this test edits no file of the real one
    const copy = tempDir()
    const keep = { recursive: true, preserveTimestamps: true }
    for (const name of ['bin', 'dist', 'broker', 'provisioning', 'certs', 'device-sim', 'package.json', 'tsconfig.json'])
      cpSync(join(root, name), join(copy, name), keep)
    for (const name of readdirSync(root).filter((n) => n.endsWith('.ts'))) cpSync(join(root, name), join(copy, name), keep)
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
    const bin = join(copy, 'bin/gatehouse.js')
    const version = () => spawnCli(['--version'], { env: dist, bin })
    expect(await version()).toMatchObject({ code: 0, stdout: `${VERSION}\n` })

    const later = new Date(Date.now() + 60_000)
    utimesSync(join(copy, 'provisioning/cli/device-list.ts'), later, later) // an edit
    const edited = await version()
    expect(edited.code).toBe(2)
    expect(edited.stderr).toContain('dist/ is older than the sources')

    utimesSync(join(copy, 'provisioning/cli/device-list.ts'), new Date(0), new Date(0))
    expect((await version()).code).toBe(0)
    writeFileSync(join(copy, 'certs/new-module.ts'), 'export {}\n') // a new file
    expect((await version()).stderr).toContain('dist/ is older than the sources')
  })
})
