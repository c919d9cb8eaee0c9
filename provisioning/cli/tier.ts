import type { Command } from 'commander'
import { mergeLimits, type LimitValues } from '../limits/limits-service.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'
import { assignmentsToPatch } from './settings.ts'

/** KEY=VALUE lines of a limits document (broker.publishRate.ratePerSecond=5), '-' when it is empty. */
export function limitLines(values: LimitValues | null): string {
  const lines: string[] = []
  const walk = (node: unknown, path: string) => {
    if (typeof node === 'object' && node !== null) for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k)
    else lines.push(`${path}=${String(node)}`)
  }
  walk(values ?? {}, '')
  return lines.length > 0 ? lines.join(' ') : '-'
}

/** The stored document with KEY=VALUE assignments on top (or in place of it, with --clear). */
export function limitsFrom(stored: LimitValues, pairs: string[], clear: boolean | undefined): LimitValues {
  return mergeLimits(clear ? {} : stored, assignmentsToPatch(pairs) as LimitValues)
}

const SET_HELP = `
KEY is broker.<limit>.<field> for the broker's per-device limits (publishRate, publishBytesRate,
packetRate; field ratePerSecond or burst) or ai.<budget> (requestsPerMinute, burst, dailyRequests,
dailyTokens). Values left out come from the configuration. A running broker applies the change to
connected devices within a second, keeping what they already spent.
Example: gatehouse tier set premium broker.publishRate.ratePerSecond=50 broker.publishRate.burst=200 ai.dailyRequests=20000`

/** `gatehouse tier list|set`: the limits each tier carries (docs/architecture.md, "The limits"). */
export function registerTier(program: Command, deps: CliDeps): void {
  const tier = program.command('tier').description("tiers' limits: broker publish and packet rates, AI budgets")
  addJsonOption(addCommonOptions(tier.command('list').description('every tier and the limits stored for it'))).action(
    async (options: CommonOptions) => {
      await withAuthority(deps, options, async (_authority, { limits }) => {
        const tiers = await limits.listTiers()
        if (options.json) return printJson(deps.io, { items: tiers })
        deps.io.out(table([['TIER', 'LIMITS', 'UPDATED'], ...tiers.map((t) => [t.tier, limitLines(t.limits), t.updatedAt ?? '-'])]))
      })
    },
  )
  const set = tier
    .command('set <name> [KEY=VALUE...]')
    .description("change a tier's limits (merged into what is stored; --clear starts from nothing)")
    .option('--clear', 'replace the stored limits instead of adding to them')
    .addHelpText('after', SET_HELP)
  addJsonOption(addCommonOptions(set)).action(async (name: string, pairs: string[], options: CommonOptions & { clear?: boolean }) => {
    await withAuthority(deps, options, async (_authority, { limits }) => {
      const view = await limits.setTier(name, limitsFrom((await limits.getTier(name)).limits, pairs, options.clear), deps.actor)
      if (options.json) return printJson(deps.io, view)
      deps.io.out(`tier ${view.tier}: ${limitLines(view.limits)}\n`)
    })
  })
}
