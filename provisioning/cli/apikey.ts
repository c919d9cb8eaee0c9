import type { Command } from 'commander'
import type { ApiKey } from '../api-keys/api-key-service.ts'
import { parseExpiry, parseOverlap } from '../api-keys/expiry.ts'
import { API_SCOPES } from '../api-keys/scopes.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

export function apiKeyJson(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    scopes: k.scopes,
    createdAt: k.createdAt.toISOString(),
    expiresAt: iso(k.expiresAt),
    lastUsedAt: iso(k.lastUsedAt),
    revokedAt: iso(k.revokedAt),
    previousSecretUntil: iso(k.previousSecretUntil),
  }
}

const STORE_WARNING =
  'Store this API key now (e.g. in your secret manager): it is shown only once, and Gatehouse keeps only a hash of it.\n'

/** gatehouse apikey create | list | revoke: API keys for apps that call the HTTP API. */
export function registerApiKey(program: Command, deps: CliDeps): void {
  const apikey = program.command('apikey').description('create, list, rotate and revoke API keys for the HTTP API')

  const create = apikey
    .command('create')
    .description('create an API key; the key is printed once, on stdout')
    .requiredOption('--name <name>', 'a unique name; the audit log shows the key as apikey:<name>')
    .requiredOption('--scopes <list>', `comma-separated scopes: ${API_SCOPES.join(', ')}`)
    .option('--expires <when>', 'a duration (12h, 30d, 8w) or an ISO date (2027-01-31); default never')
  addJsonOption(addCommonOptions(create)).action(async (options: CommonOptions & { name: string; scopes: string; expires?: string }) => {
    const scopes = options.scopes
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    const expiry = options.expires === undefined ? {} : parseExpiry(options.expires)
    await withAuthority(deps, options, async (_authority, opened) => {
      const { token, key } = await opened.apiKeys.create({ name: options.name, scopes, ...expiry }, deps.actor)
      // the key alone on stdout (KEY=$(gatehouse apikey create ...)); the rest on stderr
      if (options.json) printJson(deps.io, { token, key: apiKeyJson(key) })
      else {
        deps.io.err(`created API key '${key.name}' (scopes ${key.scopes.join(', ')}; expires ${iso(key.expiresAt) ?? 'never'})\n`)
        deps.io.out(`${token}\n`)
      }
      deps.io.err(STORE_WARNING)
    })
  })

  const list = apikey.command('list').description('list API keys (never the keys themselves)')
  addJsonOption(addCommonOptions(list)).action(async (options: CommonOptions) => {
    await withAuthority(deps, options, async (_authority, opened) => {
      const keys = await opened.apiKeys.list()
      if (options.json) return printJson(deps.io, keys.map(apiKeyJson))
      if (keys.length === 0) return deps.io.out('no API keys\n')
      const row = (k: ApiKey) => [
        k.name,
        k.scopes.join(','),
        iso(k.createdAt) ?? '-',
        iso(k.expiresAt) ?? 'never',
        iso(k.lastUsedAt) ?? 'never',
        iso(k.revokedAt) ?? '-',
      ]
      deps.io.out(table([['NAME', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'REVOKED'], ...keys.map(row)]))
    })
  })

  const rotate = apikey
    .command('rotate <name>')
    .description('a new secret for an API key (same name, id and scopes), printed once on stdout; the old one works for --overlap more')
    .option('--overlap <duration>', 'how long the old secret keeps working: seconds or 30m, 24h, 7d (0 to 30 days; default 24h)', '24h')
  addJsonOption(addCommonOptions(rotate)).action(async (name: string, options: CommonOptions & { overlap: string }) => {
    const overlapSeconds = parseOverlap(options.overlap)
    await withAuthority(deps, options, async (_authority, opened) => {
      const { token, key } = await opened.apiKeys.rotate(name, { overlapSeconds }, deps.actor)
      if (options.json) printJson(deps.io, { token, key: apiKeyJson(key) })
      else {
        deps.io.err(`rotated API key '${key.name}': the previous secret works until ${iso(key.previousSecretUntil)}\n`)
        deps.io.out(`${token}\n`)
      }
      deps.io.err(STORE_WARNING)
    })
  })

  const revoke = apikey.command('revoke <name>').description('revoke an API key, permanently; the next request with it gets 401')
  addJsonOption(addCommonOptions(revoke)).action(async (name: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (_authority, opened) => {
      const key = await opened.apiKeys.revoke(name, deps.actor)
      if (options.json) return printJson(deps.io, apiKeyJson(key))
      deps.io.out(`revoked API key '${key.name}'\n`)
    })
  })
}
