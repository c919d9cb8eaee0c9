import type { OpenAiProviderOptions } from '../options.ts'
import { postJson, providerFailure, type HttpDeps } from './http.ts'
import { toAnomalies, type InsightProvider, type ProviderResult } from './provider.ts'

/**
 * The OpenAI-compatible chat-completions wire format (OpenAI, Ollama, vLLM, llama.cpp's server,
 * LiteLLM): POST {baseUrl}/chat/completions with { model, messages }, Authorization: Bearer <key>
 * when a key is configured. The answer's choices[0].message.content is read as JSON
 * { summary, anomalies } when it is JSON (a ```json fence is tolerated), else as the summary text.
 */
export const OPENAI_SYSTEM_PROMPT =
  'You analyse IoT device telemetry for Gatehouse. Answer with JSON only: {"summary": string, "anomalies": string[]}.'

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0)

export function parseModelContent(content: string): { summary: string; anomalies: ProviderResult['anomalies'] } {
  const text = content.trim().replace(/^```(?:json)?\s*([\s\S]*?)\s*```$/, '$1')
  try {
    const parsed = JSON.parse(text) as unknown
    if (parsed && typeof parsed === 'object' && typeof (parsed as { summary?: unknown }).summary === 'string') {
      const o = parsed as { summary: string; anomalies?: unknown }
      return { summary: o.summary.slice(0, 4000), anomalies: toAnomalies(o.anomalies) }
    }
  } catch {
    // plain text: the whole answer is the summary
  }
  return { summary: content.trim().slice(0, 4000), anomalies: [] }
}

export function createOpenAiProvider(options: OpenAiProviderOptions, apiKey: string | undefined, deps: HttpDeps): InsightProvider {
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {}
  return {
    name: 'openai',
    defaultModel: options.model,
    async analyze(request, signal) {
      const body = JSON.stringify({
        model: request.model,
        messages: [
          { role: 'system', content: OPENAI_SYSTEM_PROMPT },
          { role: 'user', content: request.prompt },
        ],
      })
      const answer = (await postJson(
        'openai',
        url,
        body,
        headers,
        { timeoutMs: options.timeoutMs, maxResponseBytes: options.maxResponseBytes, ...(signal && { signal }) },
        deps,
      )) as {
        choices?: { message?: { content?: unknown } }[]
        usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown }
      } | null
      const content = answer?.choices?.[0]?.message?.content
      if (typeof content !== 'string') throw providerFailure('openai', 'the answer has no choices[0].message.content')
      const promptTokens = num(answer?.usage?.prompt_tokens)
      const completionTokens = num(answer?.usage?.completion_tokens)
      const total = num(answer?.usage?.total_tokens)
      return {
        ...parseModelContent(content),
        usage: { promptTokens, completionTokens, totalTokens: total || promptTokens + completionTokens },
      }
    },
  }
}
