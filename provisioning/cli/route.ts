import { InvalidArgumentError, type Command } from 'commander'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

interface CreateOptions extends CommonOptions {
  url: string
  group?: string
  batchSize?: number
  batchMs?: number
  queueMax?: number
  redact?: boolean
  consent?: boolean
}

const CREATE_HELP = `
The route POSTs batches as JSON { routeId, timestamp, messages: [{ deviceId, subtopic, at, data }] }
with X-Gatehouse-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the route's secret> and
X-Gatehouse-Timestamp. The secret is printed once, now. A running broker starts the route within a
second. Loopback, private and link-local targets are refused unless the configuration sets
routes.allowPrivateTargets. Example:
  gatehouse route create --url https://example.com/ingest --group pumps --batch-size 50 --redact`

/** A whole number option; anything else is a usage error (exit 2) before the registry is opened. */
function integer(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('must be a whole number')
  return Number(value)
}

/** `gatehouse route create|list|delete|test`: telemetry to HTTP endpoints (README "Routes"). */
export function registerRoute(program: Command, deps: CliDeps): void {
  const route = program.command('route').description("telemetry routes: a group's or the fleet's telemetry POSTed to an HTTP endpoint")
  const create = route
    .command('create')
    .description("send a group's (or the fleet's) telemetry to an HTTP endpoint, in signed batches")
    .requiredOption('--url <url>', 'the endpoint (http or https)')
    .option('--group <group>', "only this settings group's devices (default: the whole fleet)")
    .option('--batch-size <n>', 'messages per POST, 1-1000 (default 100)', integer)
    .option('--batch-ms <ms>', 'a batch that is not full is sent this long after its first message, 100-60000 (default 1000)', integer)
    .option('--queue-max <n>', 'messages waiting at most; more are dropped and counted, 1-100000 (default 1000)', integer)
    .option('--redact', "redact messages with the AI bridge's redaction rules")
    .option('--consent', 'skip devices whose settings say ai.consent: false')
    .addHelpText('after', CREATE_HELP)
  addJsonOption(addCommonOptions(create)).action(async (options: CreateOptions) => {
    const input = {
      url: options.url,
      ...(options.group !== undefined && { group: options.group }),
      ...(options.batchSize !== undefined && { batchSize: options.batchSize }),
      ...(options.batchMs !== undefined && { batchMs: options.batchMs }),
      ...(options.queueMax !== undefined && { queueMax: options.queueMax }),
      redact: options.redact === true,
      consent: options.consent === true,
    }
    await withAuthority(deps, options, async (_authority, { routes }) => {
      const created = await routes.create(input, deps.actor)
      if (options.json) return printJson(deps.io, created)
      deps.io.out(`route ${created.id}: ${created.group ?? 'fleet'} -> ${created.url}\n`)
      deps.io.out(`secret: ${created.secret}\n(shown only now: the receiver checks X-Gatehouse-Signature with it)\n`)
    })
  })
  addJsonOption(addCommonOptions(route.command('list').description('every route (never its secret)'))).action(
    async (options: CommonOptions) => {
      await withAuthority(deps, options, async (_authority, { routes }) => {
        const items = await routes.list()
        if (options.json) return printJson(deps.io, { items })
        deps.io.out(
          table([
            ['ID', 'GROUP', 'URL', 'BATCH', 'QUEUE', 'REDACT', 'CONSENT', 'CREATED BY'],
            ...items.map((r) => [
              r.id,
              r.group ?? '(fleet)',
              r.url,
              `${r.batchSize}/${r.batchMs}ms`,
              String(r.queueMax),
              String(r.redact),
              String(r.consent),
              r.createdBy,
            ]),
          ]),
        )
      })
    },
  )
  addJsonOption(addCommonOptions(route.command('delete <id>').description('delete a route: delivery stops within a second'))).action(
    async (id: string, options: CommonOptions) => {
      await withAuthority(deps, options, async (_authority, { routes }) => {
        const deleted = await routes.delete(id, deps.actor)
        if (options.json) return printJson(deps.io, deleted)
        deps.io.out(`route ${deleted.id} deleted\n`)
      })
    },
  )
  addJsonOption(
    addCommonOptions(route.command('test <id>').description("send one signed sample batch and show the endpoint's answer")),
  ).action(async (id: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (_authority, { routes, routeTester }) => {
      const answer = await routes.test(id, deps.actor, routeTester)
      if (options.json) return printJson(deps.io, answer)
      deps.io.out(`${answer.url} answered ${answer.status}\n${answer.body}${answer.body.endsWith('\n') || answer.body === '' ? '' : '\n'}`)
    })
  })
}
