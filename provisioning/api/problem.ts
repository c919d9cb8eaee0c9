import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { ApiBodyInvalid, ApiBodyTooLarge, ApiInternal, ApiMediaType, ApiNotFound, ApiRequestInvalid, ApiValidation } from '../errors.ts'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'
export const ERROR_TYPE_BASE = 'https://gatehouse.dev/errors/'

export interface FieldError {
  field: string
  message: string
}

/** RFC 9457 problem details, with Gatehouse's code and the request id. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: string
  requestId: string
  errors?: FieldError[]
}

interface AjvLikeError {
  instancePath?: string
  message?: string
  params?: { missingProperty?: string; additionalProperty?: string }
}

type ErrorLike = Partial<FastifyError> & {
  validation?: AjvLikeError[]
  validationContext?: string
  /** set by Gatehouse code that knows the exact fields (e.g. the If-Match parser) */
  fields?: FieldError[]
  retryAfterSeconds?: number
}

const LOCATION: Record<string, string> = { querystring: 'query', body: 'body', params: 'params', headers: 'headers' }

/** `body.reason`, `params.id`, `query.limit`, `headers.if-match`: the exact field a validation error is about. */
function fieldOf(context: string | undefined, e: AjvLikeError): string {
  const parts = (e.instancePath ?? '')
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  const leaf = e.params?.missingProperty ?? e.params?.additionalProperty
  if (leaf !== undefined) parts.push(leaf)
  return [LOCATION[context ?? ''] ?? context ?? 'request', ...parts].join('.')
}

export interface ProblemContext {
  requestId: string
  bodyLimit: number
  contentType?: string | undefined
}

/**
 * The one translation of errors into HTTP (docs/conventions.md §9): coded Gatehouse errors keep their code and
 * status, fastify's own errors get Gatehouse codes, and anything else is a 500 whose detail points at the
 * log. Messages of parse errors are never echoed (Node puts a slice of the body in them).
 */
export function toProblem(err: ErrorLike, ctx: ProblemContext): { problem: Problem; internal: boolean } {
  const { requestId } = ctx
  let mapped: { code: string; status: number; detail: string; errors?: FieldError[] }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500
  if (err.validation) {
    const errors = err.validation.map((e) => ({ field: fieldOf(err.validationContext, e), message: e.message ?? 'is invalid' }))
    mapped = { ...described(new ApiValidation(errors.map((e) => `${e.field} ${e.message}`).join('; '))), errors }
  } else if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    mapped = described(new ApiBodyInvalid(err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? ' (it is empty)' : ''))
  } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    mapped = described(new ApiBodyTooLarge(ctx.bodyLimit))
  } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    mapped = described(new ApiMediaType((ctx.contentType ?? '(none)').slice(0, 80)))
  } else if (typeof err.code === 'string' && err.code.startsWith('GH_') && status < 500) {
    mapped = { code: err.code, status, detail: err.message ?? '', ...(err.fields && { errors: err.fields }) }
  } else if (typeof err.code === 'string' && err.code.startsWith('FST_') && status >= 400 && status < 500) {
    mapped = described(new ApiRequestInvalid(err.message ?? err.code))
    mapped.status = status
  } else {
    const code = typeof err.code === 'string' && err.code.startsWith('GH_') ? err.code : 'GH_API_INTERNAL'
    return {
      internal: true,
      problem: { ...problemOf(code, status >= 500 && status < 600 ? status : 500, new ApiInternal(requestId).message, requestId) },
    }
  }
  return {
    internal: false,
    problem: { ...problemOf(mapped.code, mapped.status, mapped.detail, requestId), ...(mapped.errors && { errors: mapped.errors }) },
  }
}

function described(err: FastifyError): { code: string; status: number; detail: string } {
  return { code: err.code, status: err.statusCode ?? 400, detail: err.message }
}

function problemOf(code: string, status: number, detail: string, requestId: string): Problem {
  return { type: `${ERROR_TYPE_BASE}${code}`, title: STATUS_CODES[status] ?? 'Error', status, detail, code, requestId }
}

export function sendProblem(reply: FastifyReply, problem: Problem, err?: ErrorLike): FastifyReply {
  if (problem.status === 401)
    reply.header('www-authenticate', `Bearer realm="gatehouse"${problem.code === 'GH_API_KEY_INVALID' ? ', error="invalid_token"' : ''}`)
  if (problem.status === 429 && err?.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds))
  return reply.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem)
}

/** setErrorHandler: logs (4xx at info with the code only, 5xx at error with the whole error) and answers. */
export function problemErrorHandler(bodyLimit: number) {
  return (err: ErrorLike, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const { problem, internal } = toProblem(err, { requestId: request.id, bodyLimit, contentType: request.headers['content-type'] })
    if (internal) request.log.error({ err, code: problem.code }, 'request failed')
    else request.log.info({ code: problem.code, statusCode: problem.status }, 'request refused')
    return sendProblem(reply, problem, err)
  }
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0] ?? ''
  const err = new ApiNotFound(request.method, path.slice(0, 200))
  request.log.info({ code: err.code, statusCode: 404 }, 'request refused')
  return sendProblem(reply, problemOf(err.code, 404, err.message, request.id))
}
