import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { startGatehouseProcess } from '../../helpers/gatehouse-process.ts'
import { connectDevice, readBundleCredentials } from '../../helpers/mqtt-clients.ts'
import { runCli, spawnCli } from '../../helpers/run-cli.ts'
import { createSoftHsmToken, describeWithSoftHsm, SOFTHSM_MODULE } from '../../helpers/softhsm.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

/** Every file under dir with a hash of its bytes: equal snapshots mean nothing on disk changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = join(dir, f)
    out[f] = statSync(p).isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'dir'
  }
  return out
}

/** A token of its own, a data directory initialised with its CA keys in that token, and the PIN in a 0600 file. */
async function tokenCa() {
  const dir = tempDir()
  const token = createSoftHsmToken(dir)
  const dataDir = join(dir, 'data')
  const pinFile = join(dir, 'pin')
  writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 })
  const init = await spawnCli(
    ['init', '--data-dir', dataDir, '--pkcs11-module', SOFTHSM_MODULE, '--pkcs11-token', token.label, '--pkcs11-pin-file', pinFile],
    { env: token.env },
  )
  expect(init.code, init.stderr).toBe(0)
  expect(init.stdout).toContain(`CA keys in PKCS#11 token '${token.label}'`)
  return { dir, dataDir, token, pinFile }
}

describeWithSoftHsm('gatehouse with its CA keys in a PKCS#11 token (SoftHSM2, real processes)', () => {
  it('serves a device over mutual TLS from a broker whose CA keys are in the token; the PIN is in no log and no file', async () => {
    const { dir, dataDir, token, pinFile } = await tokenCa()
    const gatehouse = await startGatehouseProcess(dataDir, token.env, ['--pkcs11-pin-file', pinFile, '--log-level', 'debug'])
    const out = join(dir, 'devices')
    const created = await spawnCli(['device', 'create', 'valve-hsm-1', '--out', out, '--data-dir', dataDir], {
      env: { ...token.env, GATEHOUSE_PKCS11_PIN_FILE: pinFile, GATEHOUSE_LOG_LEVEL: 'debug' },
    })
    expect(created.code, created.stderr).toBe(0)
    const client = await connectDevice(gatehouse.port, readBundleCredentials(out, 'valve-hsm-1'))
    expect(client.connected).toBe(true)
    // an app certificate signed by the key in the token: `app create` works and the app reads the fleet
    const app = await spawnCli(
      ['app', 'create', 'hsm-app', '--all-groups', '--classes', 'telemetry', '--out', out, '--data-dir', dataDir],
      {
        env: { ...token.env, GATEHOUSE_PKCS11_PIN_FILE: pinFile },
      },
    )
    expect(app.code, app.stderr).toBe(0)
    const reader = await connectDevice(gatehouse.port, { ...readBundleCredentials(out, 'hsm-app'), deviceId: 'app:hsm-app' })
    await reader.subscribeAsync('devices/+/telemetry', { qos: 1 })
    const got = new Promise<string>((resolve) => reader.once('message', (topic, payload) => resolve(`${topic} ${payload}`)))
    await client.publishAsync('devices/valve-hsm-1/telemetry', '{"open":true}', { qos: 1 })
    expect(await got).toBe('devices/valve-hsm-1/telemetry {"open":true}')
    await reader.endAsync()
    await client.endAsync()
    gatehouse.child.kill('SIGTERM')
    expect(await gatehouse.exited).toBe(0)

    expect(gatehouse.logs()).toContain('"deviceId":"valve-hsm-1"') // the debug log did record the connection
    for (const text of [gatehouse.logs(), gatehouse.stderr(), created.stdout, created.stderr, app.stdout, app.stderr])
      expect(text).not.toContain(token.pin)
    for (const [f, kind] of Object.entries(snapshot(dataDir)))
      if (kind !== 'dir') expect(readFileSync(join(dataDir, f)).includes(token.pin), f).toBe(false)
  })

  it('stops start and the signing commands with a coded error on a wrong or missing PIN, a missing key or module, changing nothing', async () => {
    const { dir, dataDir, token } = await tokenCa()
    const before = snapshot(dataDir)
    const run = (args: string[], env: NodeJS.ProcessEnv) => spawnCli([...args, '--data-dir', dataDir], { env: { ...token.env, ...env } })
    const start = ['start', '--mqtt-port', '0', '--http-port', '0']

    const wrongPin = await run(start, { GATEHOUSE_PKCS11_PIN: 'not-the-pin' })
    expect(wrongPin).toMatchObject({ code: 1 })
    expect(wrongPin.stderr).toContain('GH_CA_PKCS11_PIN_WRONG')
    // no PIN: refused before the module is even loaded, so this one runs in this process
    const noPin = await runCli(['ca', 'rotate', '--data-dir', dataDir])
    expect(noPin).toMatchObject({ code: 1 })
    expect(noPin.stderr).toContain('GH_CA_PKCS11_PIN_REQUIRED')

    // another token with the same label and PIN: the keys the data directory names are not in it
    const other = createSoftHsmToken(join(dir, 'other'), token.label, token.pin)
    const missingKey = await run(['device', 'create', 'valve-x', '--out', join(dir, 'out')], {
      ...other.env,
      GATEHOUSE_PKCS11_PIN: token.pin,
    })
    expect(missingKey).toMatchObject({ code: 1 })
    expect(missingKey.stderr).toContain('GH_CA_PKCS11_KEY_NOT_FOUND')
    expect(existsSync(join(dir, 'out'))).toBe(false)
    expect(snapshot(dataDir)).toEqual(before)

    // the library gone from where init found it
    const issuingKey = join(dataDir, 'ca', 'issuing.key')
    writeFileSync(issuingKey, readFileSync(issuingKey, 'utf8').replace(SOFTHSM_MODULE, '/nonexistent/libsofthsm2.so'), { mode: 0o600 })
    const moved = snapshot(dataDir)
    const missingModule = await run(start, { GATEHOUSE_PKCS11_PIN: token.pin })
    expect(missingModule).toMatchObject({ code: 1 })
    expect(missingModule.stderr).toContain('GH_CA_PKCS11_MODULE_UNUSABLE')
    expect(snapshot(dataDir)).toEqual(moved)
  })

  it('init refuses a missing module or token before it creates anything', async () => {
    const dir = tempDir()
    const token = createSoftHsmToken(dir)
    // in this process (no login succeeds here, so nothing is cached): the module reads SOFTHSM2_CONF when it loads
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF
    const init = (dataDir: string, module: string, label: string) =>
      runCli(['init', '--data-dir', dataDir, '--pkcs11-module', module, '--pkcs11-token', label], { GATEHOUSE_PKCS11_PIN: token.pin })
    const noModule = await init(join(dir, 'a'), '/nonexistent/libpkcs11.so', token.label)
    expect(noModule.stderr).toContain('GH_CA_PKCS11_MODULE_UNUSABLE')
    const noToken = await init(join(dir, 'b'), SOFTHSM_MODULE, 'no-such-token')
    expect(noToken.stderr).toContain('GH_CA_PKCS11_TOKEN_NOT_FOUND')
    expect(noToken.stderr).toContain(token.label) // the labels that are there
    expect([noModule.code, noToken.code]).toEqual([1, 1])
    expect(existsSync(join(dir, 'a')) || existsSync(join(dir, 'b'))).toBe(false)
  })
})
