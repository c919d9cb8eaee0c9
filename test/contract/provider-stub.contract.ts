import { describe, expect, it } from 'vitest'
import type { StubHandler, StubRequest } from '../helpers/ai-stubs.ts'

/** A stub AI provider answering with `handler`, and the fetch that reaches it at `url`. */
export interface ProviderStub {
  fetch: typeof fetch
  url: string
  requests: StubRequest[]
}

/**
 * What an AI provider or route test may rely on from its stub: startHttpStub (a real HTTP server on
 * loopback, test/helpers/ai-stubs.ts), which unit and integration tests alike point the providers at
 * (httpPost speaks node:http, so there is no fetch to replace).
 */
export function providerStubContract(name: string, make: (handler: StubHandler) => Promise<ProviderStub>): void {
  const post = (body: string, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k-1', 'X-Custom': 'A', ...headers },
    body,
  })

  describe(`${name} (provider stub contract)`, () => {
    it('records each request: method, path with query, the headers sent (lowercase), the raw body and its JSON', async () => {
      const stub = await make(() => ({ status: 200, body: {} }))
      await stub.fetch(`${stub.url}/v1/chat/completions?api-version=2024-06-01`, post('{"model":"m","n":1}'))
      await stub.fetch(`${stub.url}/insight`, post('not json'))
      expect(stub.requests).toHaveLength(2)
      expect(stub.requests[0]).toMatchObject({
        method: 'POST',
        path: '/v1/chat/completions?api-version=2024-06-01',
        headers: expect.objectContaining({ 'content-type': 'application/json', authorization: 'Bearer k-1', 'x-custom': 'A' }),
        raw: '{"model":"m","n":1}',
        json: { model: 'm', n: 1 },
      })
      expect(stub.requests[1]).toMatchObject({ path: '/insight', raw: 'not json', json: undefined })
    })

    it('answers with the status, headers and body the handler returns (objects as JSON), numbering the requests', async () => {
      const stub = await make((_req, index) =>
        index === 0
          ? { status: 429, headers: { 'retry-after': '2' }, body: { error: 'slow down' } }
          : index === 1
            ? { body: 'plain' }
            : { status: 204 },
      )
      const first = await stub.fetch(`${stub.url}/a`, post('{}'))
      expect([first.status, first.headers.get('retry-after'), first.headers.get('content-type'), await first.json()]).toEqual([
        429,
        '2',
        'application/json',
        { error: 'slow down' },
      ])
      const second = await stub.fetch(`${stub.url}/b`, post('{}'))
      expect([second.status, await second.text()]).toEqual([200, 'plain'])
      const third = await stub.fetch(`${stub.url}/c`, post('{}'))
      expect([third.status, await third.text()]).toEqual([204, ''])
    })

    it('answers 500 with no body when the handler fails', async () => {
      const stub = await make(() => Promise.reject(new Error('handler broke')))
      const res = await stub.fetch(`${stub.url}/a`, post('{}'))
      expect([res.status, res.headers.get('content-type'), await res.text()]).toEqual([500, null, ''])
    })

    it('sends nothing for a request whose signal is already aborted, rejecting with its reason', async () => {
      const stub = await make(() => ({ body: {} }))
      const reason = new Error('timed out')
      await expect(stub.fetch(`${stub.url}/a`, { ...post('{}'), signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
      expect(stub.requests).toEqual([])
    })
  })
}
