import { Command, Help } from 'commander'
import { describe, expect, it } from 'vitest'
import type { CliDeps } from '../../../provisioning/cli/cli-deps.ts'
import { COMMAND_TABLE, namedCommand } from '../../../provisioning/cli/command-table.ts'

// registering a command only declares it: nothing of deps is called
const deps = {} as CliDeps

describe('the command table (issue 14)', () => {
  it("says of each command module exactly what the module registers: its commands' terms and descriptions, in order", async () => {
    const help = new Help()
    for (const entry of COMMAND_TABLE) {
      const parent = new Command(entry.parent === 'program' ? 'gatehouse' : 'device')
      ;(await entry.load())(parent, deps)
      expect(parent.commands.map((c) => [help.subcommandTerm(c), c.description()])).toEqual(entry.commands)
    }
    expect(COMMAND_TABLE.flatMap((e) => e.commands).length).toBeGreaterThan(20)
  })

  it('finds the command a call names, past options and help', () => {
    const named = (...args: string[]) => namedCommand(['node', 'gatehouse', ...args])
    expect(named('device', 'list', '--json', '--data-dir', 'd')).toEqual(['device', 'list', 'd'])
    expect(named('help', 'device', 'show')).toEqual(['device', 'show'])
    expect(named('--version')).toEqual([])
    expect(named('sim', '--', 'device')).toEqual(['sim'])
  })
})
