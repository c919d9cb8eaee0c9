import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from '../../helpers/run-cli.ts'
import { tempDir } from '../../helpers/temp-dir.ts'

describe('gatehouse route', () => {
  it('creates, lists, tests (one signed sample batch) and deletes a route, with --json', async () => {
    const dataDir = join(tempDir(), 'data')
    expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0)
    const bodies: { body: string; signature: string | undefined }[] = []
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        bodies.push({ body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['x-gatehouse-signature'] as string | undefined })
        res.writeHead(202).end('queued')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`

    // loopback is refused by default, and nothing is stored
    const refused = await runCli(['route', 'create', '--url', url, '--data-dir', dataDir, '--json'])
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.stderr)).toMatchObject({ code: 'GH_ROUTE_TARGET_REFUSED' })
    expect(JSON.parse((await runCli(['route', 'list', '--data-dir', dataDir, '--json'])).stdout)).toEqual({ items: [] })

    const env = { GATEHOUSE_ROUTES_ALLOW_PRIVATE_TARGETS: 'true' }
    const created = await runCli(
      ['route', 'create', '--url', url, '--group', 'pumps', '--batch-size', '20', '--data-dir', dataDir, '--json'],
      env,
    )
    expect(created.code, created.stderr).toBe(0)
    const route = JSON.parse(created.stdout) as { id: string; secret: string }
    expect(route).toMatchObject({ group: 'pumps', batchSize: 20, createdBy: expect.stringMatching(/^operator:/) })

    const listed = await runCli(['route', 'list', '--data-dir', dataDir], env)
    expect(listed.stdout).toContain(route.id)
    expect(listed.stdout).not.toContain(route.secret)

    const tested = await runCli(['route', 'test', route.id, '--data-dir', dataDir, '--json'], env)
    expect(tested.code, tested.stderr).toBe(0)
    expect(JSON.parse(tested.stdout)).toEqual({ id: route.id, url, status: 202, body: 'queued' })
    expect(bodies).toHaveLength(1)
    expect(bodies[0]!.signature).toBe(`sha256=${createHmac('sha256', route.secret).update(bodies[0]!.body).digest('hex')}`)
    expect(JSON.parse(bodies[0]!.body)).toMatchObject({ routeId: route.id, messages: [expect.objectContaining({ data: { test: true } })] })

    expect((await runCli(['route', 'delete', route.id, '--data-dir', dataDir], env)).code).toBe(0)
    const gone = await runCli(['route', 'test', route.id, '--data-dir', dataDir, '--json'], env)
    expect(JSON.parse(gone.stderr)).toMatchObject({ code: 'GH_ROUTE_NOT_FOUND' })
    const audit = JSON.parse((await runCli(['audit', '--data-dir', dataDir, '--json'])).stdout) as
      | { action: string }[]
      | { items: { action: string }[] }
    const actions = (Array.isArray(audit) ? audit : audit.items).map((a) => a.action)
    expect(actions).toEqual(expect.arrayContaining(['route.created', 'route.tested', 'route.deleted']))
  })

  it('refuses a bad --batch-size as a usage error', async () => {
    const dataDir = join(tempDir(), 'data')
    const res = await runCli(['route', 'create', '--url', 'https://a.example/x', '--batch-size', 'lots', '--data-dir', dataDir, '--json'])
    expect(res.code).toBe(2)
    expect(JSON.parse(res.stderr)).toMatchObject({ code: 'GH_CLI_USAGE' })
  })
})
