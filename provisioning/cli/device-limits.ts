import type { Command } from 'commander'
import type { DeviceLimitsView } from '../limits/limits-service.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { limitLines, limitsFrom } from './tier.ts'

function print(deps: CliDeps, options: CommonOptions, v: DeviceLimitsView): void {
  if (options.json) return printJson(deps.io, v)
  deps.io.out(
    `device   ${v.deviceId}\ntier     ${v.tier}\ntier's   ${limitLines(v.tierLimits)}\nown      ${limitLines(v.override)}\napplied  ${limitLines(v.applied)}\n`,
  )
}

/** `gatehouse device limits show|set|clear`: one device's own limits, over its tier's. */
export function registerDeviceLimits(device: Command, deps: CliDeps): void {
  const limits = device.command('limits').description("a device's own limits, over its tier's (gatehouse tier)")
  addJsonOption(addCommonOptions(limits.command('show <id>').description("the device's own limits, its tier's and what applies"))).action(
    async (id: string, options: CommonOptions) => {
      await withAuthority(deps, options, async (_a, opened) => print(deps, options, await opened.limits.getDevice(id)))
    },
  )
  const set = limits
    .command('set <id> [KEY=VALUE...]')
    .description(
      "change the device's own limits (merged into what is stored; --clear starts from nothing); keys as in 'gatehouse tier set'",
    )
    .option('--clear', 'replace the stored limits instead of adding to them')
  addJsonOption(addCommonOptions(set)).action(async (id: string, pairs: string[], options: CommonOptions & { clear?: boolean }) => {
    await withAuthority(deps, options, async (_a, opened) => {
      const stored = (await opened.limits.getDevice(id)).override ?? {}
      print(deps, options, await opened.limits.setDevice(id, limitsFrom(stored, pairs, options.clear), deps.actor))
    })
  })
  addJsonOption(
    addCommonOptions(limits.command('clear <id>').description("remove the device's own limits: its tier's apply again")),
  ).action(async (id: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (_a, opened) => print(deps, options, await opened.limits.clearDevice(id, deps.actor)))
  })
}
