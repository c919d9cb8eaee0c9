import { request } from 'node:https'
import { join } from 'node:path'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { buildApi, type ApiOptions } from '../../../provisioning/api/build-api.ts'
import { isLoopback, serveApi } from '../../../provisioning/api/serve-api.ts'
import { initControlPlane, loadServerTls, openControlPlane } from '../../../provisioning/index.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

async function controlPlane() {
  const dataDir = join(tempDir(), 'data')
  const log = pino({ level: 'silent' })
  await initControlPlane(dataDir, {}, { log }, 'operator:test')
  const control = await openControlPlane(dataDir, {}, { log })
  onTestFinished(() => control.close())
  const build = (options: ApiOptions = {}) => {
    const app = buildApi(
      { ...control, presence: { isConnected: () => false, lastSeen: async () => null }, clock: { now: () => new Date() }, log },
      options,
    )
    onTestFinished(() => app.close())
    return app
  }
  return { dataDir, control, build }
}

function httpsGet(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('serveApi', () => {
  it('refuses plain HTTP on a non-loopback address unless allowInsecureHttp is set', async () => {
    const { build } = await controlPlane()
    for (const host of ['0.0.0.0', '::', '10.0.0.5']) {
      await expect(serveApi(build(), { host, port: 0 })).rejects.toMatchObject({ code: 'GH_API_INSECURE' })
    }
    // (the allowInsecureHttp path is not exercised here: it would bind a non-loopback address)
  })

  it('serves plain HTTP on loopback by default', async () => {
    const { build } = await controlPlane()
    const served = await serveApi(build(), { port: 0 })
    onTestFinished(() => served.close())
    expect(served.url).toBe(`http://127.0.0.1:${served.port}`)
    expect((await fetch(`${served.url}/healthz`)).status).toBe(200)
  })

  it('serves HTTPS with the Gatehouse server certificate, verified against the Gatehouse CA', async () => {
    const { dataDir, control, build } = await controlPlane()
    const tls = await loadServerTls(dataDir)
    const served = await serveApi(build({ https: { key: tls.key, cert: tls.cert } }), { host: '127.0.0.1', port: 0 })
    onTestFinished(() => served.close())
    expect(served.url).toBe(`https://127.0.0.1:${served.port}`)
    expect(await httpsGet(`${served.url}/healthz`, tls.ca)).toEqual({ status: 200, body: '{"status":"ok","checks":{}}' })
    const { token } = await control.apiKeys.create({ name: 'app', scopes: ['devices:read'] }, 'operator:test')
    const list = await httpsGet(`${served.url}/v1/devices`, tls.ca, { authorization: `Bearer ${token}` })
    expect(list.status).toBe(200)
    expect(JSON.parse(list.body)).toEqual({ items: [], next: null })
    await expect(httpsGet(`${served.url}/healthz`, '')).rejects.toThrow()
  })

  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.2', false],
    ['api.example.com', false],
  ])('isLoopback(%s) is %s', (host, expected) => {
    expect(isLoopback(host)).toBe(expected)
  })
})
