import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../../config.ts'
import { startGatehouse } from '../../../gatehouse.ts'
import { buildApi } from '../../../provisioning/api/build-api.ts'
import { serveApi } from '../../../provisioning/api/serve-api.ts'
import { initControlPlane, loadServerTls, openControlPlane } from '../../../provisioning/index.ts'
import type { DeviceCredentials } from '../../helpers/broker-pki.ts'
import { attemptConnect, closedWithin, connectDevice } from '../../helpers/mqtt-clients.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

const CHROMIUM = '/usr/bin/chromium'
/** A JSON answer (problem details carry `code`) */
const json = async (res: Response) => (await res.json()) as Record<string, unknown>
// The README's screenshots are refreshed only on request (UPDATE_SCREENSHOTS=1 npx vitest run
// test/integration/dashboard): a plain test run writes them to a temp dir and leaves the tree clean.
const imagesDir = () => (process.env.UPDATE_SCREENSHOTS === '1' ? join(import.meta.dirname, '../../../docs/images') : tempDir())

/** Gatehouse on temp dirs and ephemeral ports, closed when the test ends, with a dashboard key and a key without the scope. */
async function running() {
  const world = await started(tempDir())
  onTestFinished(() => world.gatehouse.close())
  return world
}

/** Gatehouse as running() gives it, in root, closed by the caller; dashboard keys of other names from dashboardKey. */
async function started(root: string) {
  const dataDir = join(root, 'data')
  const gatehouse = await startGatehouse(loadConfig({ dataDir, mqttPort: 0, httpPort: 0 }, {}), { log: pino({ level: 'silent' }) })
  const { control } = gatehouse
  const dashboardKey = async (name: string) => (await control.apiKeys.create({ name, scopes: ['dashboard'] }, 'operator:test')).token
  const dashKey = await dashboardKey('ops-dash')
  const readKey = (await control.apiKeys.create({ name: 'app-read', scopes: ['devices:read'] }, 'operator:test')).token
  const provision = async (id: string, group?: string): Promise<DeviceCredentials> => {
    const issued = await control.authority.createDevice({ id, ...(group && { group }) }, 'operator:test')
    return { deviceId: id, cert: issued.certificatePem, key: issued.privateKey!.pem, ca: issued.chainPem, serial: issued.serial }
  }
  const base = gatehouse.http.url
  const http = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { redirect: 'manual', ...init })
  const signIn = async (key: string) => {
    const res = await http('/dashboard/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key }),
    })
    return { res, cookie: res.headers.get('set-cookie')?.split(';')[0] }
  }
  return { gatehouse, control, dashKey, dashboardKey, readKey, provision, base, http, signIn }
}

describe('dashboard over plain HTTP (no browser)', () => {
  // one Gatehouse for these tests: each uses keys and devices of its own, so none sees another's sessions
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-dashboard-'))
  let world: Awaited<ReturnType<typeof started>>
  beforeAll(async () => {
    world = await started(root)
  })
  afterAll(async () => {
    await world?.gatehouse.close()
    rmSync(root, { recursive: true, force: true })
  })

  it('answers no page or data route without a session: pages redirect to sign-in, data routes 401', async () => {
    const { http, provision } = world
    await provision('pump-0')
    for (const path of ['/dashboard', '/dashboard/devices/pump-0']) {
      const res = await http(path)
      expect(res.status, path).toBe(303)
      expect(res.headers.get('location')).toBe('/dashboard/sign-in')
    }
    const data = ['/dashboard/api/session', '/dashboard/api/overview', '/dashboard/api/devices/pump-0', '/dashboard/api/events']
    for (const path of data) {
      const res = await http(path, { headers: { cookie: 'gatehouse_session=forged' } })
      expect(res.status, path).toBe(401)
      expect((await json(res)).code).toBe('GH_DASHBOARD_SESSION')
    }
    for (const action of ['disable', 'enable', 'revoke', 'renew']) {
      const res = await http(`/dashboard/api/devices/pump-0/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      })
      expect(res.status, action).toBe(401)
    }
    expect((await http('/dashboard/sign-in')).status).toBe(200)
  })

  it('signs in only with a valid key that has the dashboard scope, in an HttpOnly SameSite=Strict cookie', async () => {
    const { signIn, dashKey, readKey, http } = world
    const wrong = await signIn(`${dashKey.slice(0, -4)}AAAA`)
    expect(wrong.res.status).toBe(401)
    expect((await json(wrong.res)).code).toBe('GH_API_KEY_INVALID')
    expect(wrong.cookie).toBeUndefined()
    const unscoped = await signIn(readKey)
    expect(unscoped.res.status).toBe(403)
    expect((await json(unscoped.res)).code).toBe('GH_API_KEY_SCOPE')

    const ok = await signIn(dashKey)
    expect(ok.res.status).toBe(200)
    const setCookie = ok.res.headers.get('set-cookie') ?? ''
    expect(setCookie).toMatch(/HttpOnly/i)
    expect(setCookie).toMatch(/SameSite=Strict/i)
    expect(setCookie).toMatch(/Path=\/dashboard/)
    const session = await http('/dashboard/api/session', { headers: { cookie: ok.cookie! } })
    expect(await json(session)).toMatchObject({ name: 'ops-dash', csrfToken: expect.any(String) })
  })

  it('refuses a POST without the CSRF token, or from another origin, and signs out', async () => {
    const { signIn, dashKey, http, provision, control } = world
    await provision('pump-1')
    const { cookie } = await signIn(dashKey)
    const csrfToken = (await json(await http('/dashboard/api/session', { headers: { cookie: cookie! } }))).csrfToken as string
    const post = (path: string, headers: Record<string, string>) =>
      http(path, { method: 'POST', headers: { cookie: cookie!, 'content-type': 'application/json', ...headers }, body: '{}' })

    const noToken = await post('/dashboard/api/devices/pump-1/disable', {})
    expect(noToken.status).toBe(403)
    expect((await json(noToken)).code).toBe('GH_DASHBOARD_CSRF')
    const wrongToken = await post('/dashboard/api/devices/pump-1/disable', { 'x-csrf-token': `${csrfToken}x` })
    expect((await json(wrongToken)).code).toBe('GH_DASHBOARD_CSRF')
    const crossSite = await post('/dashboard/api/devices/pump-1/disable', { 'x-csrf-token': csrfToken, origin: 'https://evil.example' })
    expect(crossSite.status).toBe(403)
    expect((await json(crossSite)).code).toBe('GH_DASHBOARD_ORIGIN')
    expect((await control.authority.getDevice('pump-1')).device.status).toBe('active')

    const disabled = await post('/dashboard/api/devices/pump-1/disable', { 'x-csrf-token': csrfToken })
    expect(await json(disabled)).toEqual({ status: 'disabled' })
    expect((await control.authority.listAudit({ subject: 'pump-1', action: 'device.disabled' }))[0]?.actor).toBe('apikey:ops-dash')

    expect((await post('/dashboard/sign-out', { 'x-csrf-token': csrfToken })).status).toBe(200)
    expect((await http('/dashboard/api/overview', { headers: { cookie: cookie! } })).status).toBe(401)
  })

  it("replaces the browser's session when it signs in again", async () => {
    const { dashboardKey, http } = world
    const dashKey = await dashboardKey('ops-again')
    const post = (cookie?: string) =>
      http('/dashboard/sign-in', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(cookie && { cookie }) },
        body: JSON.stringify({ key: dashKey }),
      })
    const first = (await post()).headers.get('set-cookie')?.split(';')[0]
    const second = (await post(first)).headers.get('set-cookie')?.split(';')[0]
    expect(second).not.toBe(first)
    expect((await http('/dashboard/api/session', { headers: { cookie: first! } })).status).toBe(401)
    expect((await http('/dashboard/api/session', { headers: { cookie: second! } })).status).toBe(200)
  })

  it('ends the session of a key revoked after sign-in', async () => {
    const { signIn, dashboardKey, http, control } = world
    const { cookie } = await signIn(await dashboardKey('ops-revoked'))
    expect((await http('/dashboard/api/overview', { headers: { cookie: cookie! } })).status).toBe(200)
    await control.apiKeys.revoke('ops-revoked', 'operator:test')
    expect((await http('/dashboard/api/overview', { headers: { cookie: cookie! } })).status).toBe(401)
  })

  it('serves pages with a Content-Security-Policy without unsafe-inline and no framing', async () => {
    const { http } = world
    const res = await http('/dashboard/sign-in')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    const html = await res.text()
    expect(html).not.toMatch(/<script>|<style>|style="|onclick=/)
    expect((await http('/dashboard/assets/uplot.min.js')).headers.get('content-type')).toContain('text/javascript')
    expect((await http('/dashboard/assets/..%2Fdashboard-routes.ts')).status).toBe(404)
  })
})

/** One HTTPS request verified against the Gatehouse CA: status, headers, body. */
function httpsRequest(url: string, ca: string, method: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request(url, { ca, method, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('dashboard over HTTPS', () => {
  it('marks the session cookie Secure, and takes only an https Origin of this server', async () => {
    const dataDir = join(tempDir(), 'data')
    const log = pino({ level: 'silent' })
    await initControlPlane(dataDir, {}, { log }, 'operator:test')
    const control = await openControlPlane(dataDir, {}, { log })
    onTestFinished(() => control.close())
    const tls = await loadServerTls(dataDir)
    const signals = {
      connectedDeviceIds: () => [],
      onChange: () => () => {},
      busiestDevices: () => ({ since: new Date().toISOString(), devices: [], untracked: 0 }),
      aiThrottledByTier: () => ({}),
      connectionHistory: () => [],
    }
    const presence = { isConnected: () => false, lastSeen: async () => null }
    const app = buildApi(
      { ...control, presence, clock: { now: () => new Date() }, log, dashboard: { signals } },
      { https: { key: tls.key, cert: tls.cert } },
    )
    const served = await serveApi(app, { host: '127.0.0.1', port: 0 })
    onTestFinished(() => served.close())
    const key = (await control.apiKeys.create({ name: 'ops-dash', scopes: ['dashboard'] }, 'operator:test')).token
    const signIn = (origin: string) =>
      httpsRequest(
        `${served.url}/dashboard/sign-in`,
        tls.ca,
        'POST',
        { 'content-type': 'application/json', origin },
        JSON.stringify({ key }),
      )

    const plainOrigin = await signIn(`http://127.0.0.1:${served.port}`)
    expect(plainOrigin.status).toBe(403)
    expect(JSON.parse(plainOrigin.body).code).toBe('GH_DASHBOARD_ORIGIN')
    const ok = await signIn(served.url)
    expect(ok.status).toBe(200)
    expect(String(ok.headers['set-cookie'])).toMatch(/; Secure/)
  })
})

describe.skipIf(!existsSync(CHROMIUM))(`dashboard in headless Chromium (${CHROMIUM}; skipped when absent)`, () => {
  async function browser(): Promise<Browser> {
    const b = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true })
    onTestFinished(() => b.close())
    return b
  }

  it('signs in, sees a device connect live, opens its page, disables it, and the device is disconnected', async () => {
    const { base, dashKey, provision, control, gatehouse } = await running()
    const images = imagesDir()
    const pump = await provision('pump-1', 'north')
    await provision('valve-2', 'north')
    const meter = await provision('meter-3', 'south')
    await control.authority.disableDevice('valve-2', 'operator:test')
    await control.authority.revokeDevice('meter-3', 'keyCompromise', 'operator:test')
    expect((await attemptConnect(gatehouse.mqtt.port, meter)).connack).toBe(5) // a refused connection to show

    const page = await (await (await browser()).newContext({ viewport: { width: 1200, height: 900 } })).newPage()
    const problems: string[] = []
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())))
    page.on('pageerror', (e) => void problems.push(e.message))

    await page.goto(`${base}/dashboard`)
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in') // no session: sent to sign in
    await page.fill('#key', `${dashKey}x`)
    await page.click('button[type=submit]')
    await page.locator('#error').filter({ hasText: 'GH_API_KEY_INVALID' }).waitFor()
    await page.fill('#key', dashKey)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}/dashboard`)
    problems.length = 0 // the wrong key's 401 above was expected
    await page.locator('#count-registered .value').filter({ hasText: '3' }).waitFor()
    await page.locator('#live').filter({ hasText: 'live' }).waitFor()

    const client = await connectDevice(gatehouse.mqtt.port, pump) // after the page is up: it must appear live
    const link = page.locator('#connected a', { hasText: 'pump-1' })
    await link.waitFor()
    await page.locator('#count-connected .value').filter({ hasText: '1' }).waitFor()
    await page.locator('#refused').filter({ hasText: 'meter-3' }).waitFor()
    await page.locator('#expiry-chart canvas').waitFor()
    await page.screenshot({ path: join(images, 'dashboard-overview.png'), fullPage: true })

    await link.click()
    await page.waitForURL(`${base}/dashboard/devices/pump-1`)
    await page.locator('#device-connection .value').filter({ hasText: 'connected' }).waitFor()
    await page.locator('#certificates').filter({ hasText: pump.serial }).waitFor()
    await page.locator('#connections td', { hasText: /^connect$/ }).waitFor()
    await page.screenshot({ path: join(images, 'dashboard-device.png'), fullPage: true })

    const closed = closedWithin(client)
    await page.click('#action-disable')
    await page.click('#confirm-ok')
    await closed
    await page.locator('#device-status .value').filter({ hasText: 'disabled' }).waitFor()
    await page.locator('#device-connection .value').filter({ hasText: 'offline' }).waitFor()
    expect((await control.authority.listAudit({ subject: 'pump-1', action: 'device.disabled' }))[0]?.actor).toBe('apikey:ops-dash')
    expect(problems).toEqual([]) // no CSP violation or script error in the console
  })
})
