// provisioning/cli/: the operator commands. cli.ts imports this file, which loads no command: each one's
// module loads when a call names it (command-table.ts, issue 14).
export type { CliDeps, CliIo, CommonOptions } from './cli-deps.ts'
export { addCommonOptions } from './cli-deps.ts'
export { namedCommand, registerProvisioningCommands } from './command-table.ts'
export { CliInternal, CliUsage } from '../errors.ts'
