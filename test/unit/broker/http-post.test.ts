import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock, systemTimers } from '../../../certs/index.ts'
import {
  createHttpAgents,
  HttpPostFailed,
  httpPost,
  parseRetryAfter,
  RETRY_AFTER_CAP_MS,
  type HttpPostRequest,
} from '../../../broker/http-post.ts'
import { waitFor } from '../../helpers/wait.ts'

// The one outbound POST against a real loopback HTTP server: each path is one fault.
const closed: string[] = []
const seen: string[] = []
const handlers: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/ok': (_req, res) => res.end('{"fine":true}'),
  '/hang': () => {},
  '/reset': (req) => req.socket.destroy(),
  '/slow-body': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"partial":')
  },
  '/big': (_req, res) => res.end('x'.repeat(100_000)),
  '/429-seconds': (_req, res) => res.writeHead(429, { 'retry-after': '3' }).end(),
  '/429-date': (_req, res) => res.writeHead(429, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() }).end(),
  '/429-huge': (_req, res) => res.writeHead(429, { 'retry-after': '99999999999' }).end(),
  '/429-garbage': (_req, res) => res.writeHead(429, { 'retry-after': 'soon' }).end(),
  '/redirect': (_req, res) => res.writeHead(302, { location: '/ok' }).end(),
  '/500-hanging-body': (_req, res) => {
    res.writeHead(500)
    res.write('partial')
  },
}
const server = createServer((req, res) => {
  req.socket.once('close', () => closed.push(req.url ?? ''))
  req.resume()
  req.on('end', () => seen.push(req.url ?? ''))
  req.on('end', () => handlers[req.url ?? '']?.(req, res))
})
let base = ''
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  deps.agents.destroy()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

const deps = { agents: createHttpAgents(4), timers: systemTimers, clock: systemClock }
const post = (path: string, extra: Partial<HttpPostRequest> = {}) =>
  httpPost(
    {
      url: `${base}${path}`,
      body: '{}',
      headers: {},
      timeoutMs: 5000, // generous, for a loaded box: the tests of the time-out give their own short one
      maxResponseBytes: 1024,
      oversize: 'fail',
      redirect: 'error',
      ...extra,
    },
    deps,
  )
const failure = async (p: Promise<unknown>): Promise<HttpPostFailed> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(HttpPostFailed)
  return err as HttpPostFailed
}

describe('httpPost', () => {
  it('answers a 2xx with its body', async () => {
    expect(await post('/ok')).toEqual({ status: 200, ok: true, body: '{"fine":true}' })
  })

  it('sends the next POST to an origin on the same connection (keep-alive), at most maxSockets at once', async () => {
    const agents = createHttpAgents(2)
    const sockets = new Set<unknown>()
    const count = (socket: unknown) => sockets.add(socket)
    server.on('connection', count)
    try {
      const one = { ...deps, agents }
      const go = () =>
        httpPost(
          { url: `${base}/ok`, body: '{}', headers: {}, timeoutMs: 5000, maxResponseBytes: 1024, oversize: 'fail', redirect: 'error' },
          one,
        )
      for (let i = 0; i < 3; i++) expect((await go()).body).toBe('{"fine":true}')
      expect(sockets.size).toBe(1)
      await Promise.all(Array.from({ length: 6 }, go))
      expect(sockets.size).toBe(2)
    } finally {
      server.off('connection', count)
      agents.destroy()
    }
  })

  it('times out an endpoint that never answers, and closes the connection', async () => {
    const err = await failure(post('/hang', { timeoutMs: 400 }))
    expect([err.reason, err.message]).toEqual(['timeout', 'no answer within 400 ms'])
    await waitFor(() => closed.includes('/hang'), 2000, 'the hanging connection closed')
  })

  it('times out a body that stops after the headers: the timer covers the whole body', async () => {
    const err = await failure(post('/slow-body', { timeoutMs: 400 }))
    expect(err.reason).toBe('timeout')
    await waitFor(() => closed.includes('/slow-body'), 2000, 'the slow connection closed')
  })

  it('reports a reset connection as a network error', async () => {
    const err = await failure(post('/reset'))
    expect(err.reason).toBe('network')
    expect(err.message).toMatch(/^network error/)
  })

  it('reads a body only up to its bound: fails, or keeps the first bytes', async () => {
    const err = await failure(post('/big'))
    expect([err.reason, err.message]).toEqual(['too-large', 'response larger than 1024 bytes'])
    const cut = await post('/big', { oversize: 'truncate' })
    expect(cut.body).toBe('x'.repeat(1024))
  })

  it('answers a non-2xx without reading its body (a body that never ends does not hold it)', async () => {
    expect(await post('/500-hanging-body')).toEqual({ status: 500, ok: false, body: '' })
  })

  it.each([
    ['/429-seconds', 3000, 3000],
    ['/429-date', 28_000, 30_000],
    ['/429-huge', RETRY_AFTER_CAP_MS, RETRY_AFTER_CAP_MS],
  ])('parses Retry-After of %s', async (path, low, high) => {
    const res = await post(path)
    expect(res.status).toBe(429)
    expect(res.retryAfterMs).toBeGreaterThanOrEqual(low)
    expect(res.retryAfterMs).toBeLessThanOrEqual(high)
  })

  it('leaves an unusable Retry-After out', async () => {
    const res = await post('/429-garbage')
    expect(res).toEqual({ status: 429, ok: false, body: '' })
  })

  it('never follows a redirect: an error, or the 3xx itself', async () => {
    expect((await failure(post('/redirect'))).reason).toBe('network')
    expect((await post('/redirect', { redirect: 'manual' })).status).toBe(302)
  })

  it("aborts on the caller's signal (a route deleted, the broker closing) with the signal's reason", async () => {
    const stop = new AbortController()
    const [seenBefore, before] = [seen.length, closed.filter((p) => p === '/hang').length]
    const pending = post('/hang', { timeoutMs: 10_000, signal: stop.signal })
    await waitFor(() => seen.length > seenBefore, 2000, 'the request at the server')
    stop.abort(new Error('closing'))
    await expect(pending).rejects.toThrow('closing')
    await waitFor(() => closed.filter((p) => p === '/hang').length > before, 2000, 'the aborted connection closed')
    await expect(post('/ok', { signal: stop.signal })).rejects.toThrow('closing')
  })

  it.each([
    ['seconds', '2', 2000],
    ['a number that is not an integer', '1.5', undefined],
    ['a negative number', '-5', undefined],
    ['a huge number (capped)', '9'.repeat(30), RETRY_AFTER_CAP_MS],
  ])('parseRetryAfter: %s', (_name, header, expected) => {
    expect(parseRetryAfter(header, new Date('2026-03-01T12:00:00Z'))).toBe(expected)
  })
})
