import type { Logger } from 'pino'
import { describeSchemaErrors, isLocalHostName, isPrivateAddress, schemaValidator, type Clock, type Random } from '../../certs/index.ts'
import { RouteInvalid, RouteLimit, RouteNotFound, RouteTargetRefused, RouteTestFailed } from '../errors.ts'
import type { RegistryStore } from '../store/registry-store.ts'
import type { RouteRecord, RouteStore } from '../store/route-store.ts'

/** What the configuration says about routes (config.ts `routes`; the broker applies the same keys). */
export interface RoutePolicy {
  maxRoutes: number
  /** loopback, private and link-local targets allowed (SSRF: off by default) */
  allowPrivateTargets: boolean
}

/** A route's input (POST /v1/routes, `gatehouse route create`): the JSON Schema the API and the service check. */
export const ROUTE_INPUT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    /** http(s), no user or password, no fragment */
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    /** a settings group; absent or null: the whole fleet */
    group: { type: ['string', 'null'], pattern: '^[A-Za-z0-9._-]{1,64}$' },
    /** messages per POST */
    batchSize: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    /** a batch that is not full is sent this long after its first message */
    batchMs: { type: 'integer', minimum: 100, maximum: 60_000, default: 1000 },
    /** messages waiting for this route at most; more are dropped and counted (overflow) */
    queueMax: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000 },
    /** redact each message with the AI bridge's redaction rule for the device's group */
    redact: { type: 'boolean', default: false },
    /** skip devices whose settings say ai.consent: false */
    consent: { type: 'boolean', default: false },
  },
} as const

export type RouteInput = {
  url: string
  group?: string | null
  batchSize?: number
  batchMs?: number
  queueMax?: number
  redact?: boolean
  consent?: boolean
}

/** A route as operators and apps see it: never its secret (shown once, by create). */
export interface RouteView {
  id: string
  url: string
  group: string | null
  batchSize: number
  batchMs: number
  queueMax: number
  redact: boolean
  consent: boolean
  createdAt: string
  createdBy: string
}

/** One sample message of `route test`: the shape a receiver gets (broker/telemetry-routes/deliver.ts). */
export interface SampleMessage {
  deviceId: string
  subtopic: string
  at: string
  data: Record<string, unknown>
}

/**
 * Sends one signed batch to a route's URL the way the broker does (the composition root passes the
 * broker's deliverBatch); resolves with the answer, throws (with a message) when the endpoint refused it.
 */
export type RouteTester = (
  route: { id: string; url: string; secret: string },
  messages: SampleMessage[],
) => Promise<{ status: number; body: string }>

// built by `npm run build` (certs/prebuilt-validators.ts), else compiled on first use
const routeInputValidator = schemaValidator('route-input', ROUTE_INPUT_SCHEMA, { allErrors: true, strict: true, useDefaults: true })

export const viewOf = (r: RouteRecord): RouteView => ({
  id: r.id,
  url: r.url,
  group: r.group,
  batchSize: r.batchSize,
  batchMs: r.batchMs,
  queueMax: r.queueMax,
  redact: r.redact,
  consent: r.consent,
  createdAt: r.createdAt.toISOString(),
  createdBy: r.createdBy,
})

/** http(s) only, no credentials or fragment; a literal non-public address or localhost only when allowed. */
export function checkRouteUrl(text: string, allowPrivate: boolean): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new RouteInvalid('url is not an absolute URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RouteInvalid(`url must be http or https, not ${url.protocol.slice(0, 16)}`)
  if (url.username || url.password) throw new RouteInvalid('url must not hold a user or password (the batches are signed instead)')
  if (url.hash) throw new RouteInvalid('url must not have a fragment')
  if (!allowPrivate && (isLocalHostName(url.hostname) || isPrivateAddress(url.hostname)))
    throw new RouteTargetRefused(`${url.host} is a loopback, private or link-local address`)
  return url
}

export type RouteService = ReturnType<typeof createRouteService>

/** The settings cipher (provisioning/settings/secrets.ts), which seals route secrets at rest too. */
export interface SecretCipher {
  encrypt(value: unknown): unknown
  decrypt(sealed: unknown): unknown
  /** throws why the cipher cannot be used (its key is missing) */
  assertUsable(): void
}

const SEALED_PREFIX = '{"$enc":'
/** A stored secret sealed with the settings key ({"$enc": ...} as JSON text); a generated one is base64url. */
export const isSealedSecret = (stored: string): boolean => stored.startsWith(SEALED_PREFIX)

/**
 * Telemetry routes in the registry (docs/architecture.md, "Telemetry routes"). A change commits with its
 * audit entry and its route.changed event, which the broker follows; bad input stores nothing.
 */
export function createRouteService(
  deps: { store: RegistryStore; routes: RouteStore; cipher: SecretCipher; clock: Clock; random: Random; log: Logger },
  policy: RoutePolicy,
) {
  const { store, routes, cipher, clock, random } = deps
  const seal = (secret: string): string => JSON.stringify(cipher.encrypt(secret))
  /** The secret in clear, for signing only (a row from before sealing is read as it is, and sealed on open). */
  const open = (r: RouteRecord): RouteRecord => {
    if (!isSealedSecret(r.secret)) return r
    const secret = cipher.decrypt(JSON.parse(r.secret))
    if (typeof secret !== 'string') throw new RouteInvalid(`the stored secret of ${r.id} is not a string`)
    return { ...r, secret }
  }

  async function recordOf(id: string): Promise<RouteRecord> {
    const r = typeof id === 'string' && id.length <= 64 ? await routes.get(id) : undefined
    if (!r) throw new RouteNotFound(String(id).slice(0, 64))
    return r
  }

  async function commit(actor: string, action: string, id: string, details: Record<string, unknown>) {
    const at = clock.now()
    await store.appendAudit({ at, actor, action, subject: id, details })
    await store.appendEvent('route.changed', { routeId: id }, at)
    return at
  }

  return {
    schema: ROUTE_INPUT_SCHEMA,
    /**
     * The records the broker runs, with their secrets unsealed: for the composition root only (it hands
     * them to the broker, which signs the batches). A route whose secret does not open is left out and logged.
     */
    async records(): Promise<RouteRecord[]> {
      return (await routes.list()).flatMap((r) => {
        try {
          return [open(r)]
        } catch (err) {
          deps.log.error({ routeId: r.id, code: (err as { code?: string }).code }, 'a route secret does not open; the route is not run')
          return []
        }
      })
    },
    /**
     * Seals the secrets stored in clear (routes created before they were sealed); run when the control plane
     * opens. Without a usable settings key they stay as they are (and are sealed on a later open).
     */
    async sealStoredSecrets(): Promise<number> {
      try {
        cipher.assertUsable()
      } catch {
        return 0
      }
      const clear = (await routes.list()).filter((r) => !isSealedSecret(r.secret))
      if (clear.length === 0) return 0
      await store.transaction(async () => {
        for (const r of clear) {
          await routes.delete(r.id)
          await routes.insert({ ...r, secret: seal(r.secret) })
        }
      })
      deps.log.info({ routes: clear.length }, 'sealed route secrets stored in clear')
      return clear.length
    },
    list: async (): Promise<RouteView[]> => (await routes.list()).map(viewOf),
    get: async (id: string): Promise<RouteView> => viewOf(await recordOf(id)),
    /** Stores a route, its secret sealed with the settings key; the secret is in the answer and never again. */
    async create(input: unknown, actor: string): Promise<RouteView & { secret: string }> {
      const doc = structuredClone(input) as RouteInput
      const validateInput = routeInputValidator()
      if (!validateInput(doc)) throw new RouteInvalid(describeSchemaErrors(validateInput.errors ?? [], 'route').join('; '))
      const url = checkRouteUrl(doc.url, policy.allowPrivateTargets)
      cipher.assertUsable()
      const id = `rt_${Buffer.from(random.bytes(6)).toString('hex')}`
      const secret = Buffer.from(random.bytes(32)).toString('base64url')
      const record: RouteRecord = {
        id,
        url: url.href,
        group: doc.group ?? null,
        secret: seal(secret),
        batchSize: doc.batchSize ?? 100,
        batchMs: doc.batchMs ?? 1000,
        queueMax: doc.queueMax ?? 1000,
        redact: doc.redact ?? false,
        consent: doc.consent ?? false,
        createdAt: clock.now(),
        createdBy: actor,
      }
      await store.transaction(async () => {
        if ((await routes.count()) >= policy.maxRoutes) throw new RouteLimit(policy.maxRoutes)
        const { secret: _secret, createdAt: _at, ...details } = record
        await commit(actor, 'route.created', record.id, details)
        await routes.insert(record)
      })
      return { ...viewOf(record), secret }
    },
    async delete(id: string, actor: string): Promise<RouteView> {
      const r = await recordOf(id)
      await store.transaction(async () => {
        if (await routes.delete(r.id)) await commit(actor, 'route.deleted', r.id, { url: r.url })
      })
      return viewOf(r)
    },
    /** Sends one signed sample batch to the route's URL and returns the answer (audited). */
    async test(id: string, actor: string, tester: RouteTester): Promise<{ id: string; url: string; status: number; body: string }> {
      const r = await recordOf(id)
      checkRouteUrl(r.url, policy.allowPrivateTargets)
      const sample: SampleMessage = { deviceId: 'gatehouse-route-test', subtopic: '', at: clock.now().toISOString(), data: { test: true } }
      await store.appendAudit({ at: clock.now(), actor, action: 'route.tested', subject: r.id, details: { url: r.url } })
      try {
        const answer = await tester(open(r), [sample])
        return { id: r.id, url: r.url, ...answer }
      } catch (err) {
        throw new RouteTestFailed(r.url, err instanceof Error ? err.message : String(err), { cause: err })
      }
    },
  }
}
