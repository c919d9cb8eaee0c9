import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'

/** One HTTP request as a provider stub saw it. */
export interface StubRequest {
  method: string
  path: string
  headers: Record<string, string>
  /** the raw body, exactly as sent (for signatures) */
  raw: string
  /** the body parsed as JSON (undefined when it is not JSON) */
  json: unknown
}

export interface StubResponse {
  status?: number
  headers?: Record<string, string>
  /** objects are sent as JSON */
  body?: unknown
}

export type StubHandler = (request: StubRequest, index: number) => StubResponse | Promise<StubResponse>

/** An OpenAI chat-completions answer (the wire format of OpenAI, Ollama, vLLM, llama.cpp, LiteLLM). */
export function chatCompletion(content: unknown, usage = { prompt_tokens: 40, completion_tokens: 20, total_tokens: 60 }): StubResponse {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-test',
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          finish_reason: 'stop',
          message: { role: 'assistant', content: typeof content === 'string' ? content : JSON.stringify(content) },
        },
      ],
      usage,
    },
  }
}

const lowerHeaders = (h: IncomingHttpHeaders): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v
  return out
}

const parse = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return undefined
  }
}

/** A real HTTP server on 127.0.0.1, port 0, closed when the test finishes. */
export async function startHttpStub(handler: StubHandler): Promise<{ url: string; requests: StubRequest[] }> {
  const requests: StubRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const r: StubRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: lowerHeaders(req.headers),
        raw,
        json: parse(raw),
      }
      requests.push(r)
      Promise.resolve(handler(r, requests.length - 1)).then(
        (out) => {
          res.writeHead(out.status ?? 200, { 'content-type': 'application/json', ...out.headers })
          res.end(out.body === undefined ? '' : typeof out.body === 'string' ? out.body : JSON.stringify(out.body))
        },
        () => {
          res.writeHead(500)
          res.end()
        },
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests }
}
