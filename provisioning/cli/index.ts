import type { Command } from 'commander'
import { registerApiKey } from './apikey.ts'
import { registerAudit } from './audit.ts'
import { registerCa } from './ca.ts'
import { registerCheck } from './check.ts'
import type { CliDeps } from './cli-deps.ts'
import { registerClaim } from './claim.ts'
import { registerCrl } from './crl.ts'
import { registerDeviceBulk } from './device-bulk.ts'
import { registerDeviceCreateBatch } from './device-create-batch.ts'
import { registerDeviceCreate } from './device-create.ts'
import { registerDeviceLimits } from './device-limits.ts'
import { registerDeviceList } from './device-list.ts'
import { registerDeviceRenew } from './device-renew.ts'
import { registerDeviceRevoke } from './device-revoke.ts'
import { registerDeviceShow } from './device-show.ts'
import { registerDeviceStatus } from './device-status.ts'
import { registerDeviceUpdate } from './device-update.ts'
import { registerInit } from './init.ts'
import { registerSettings } from './settings.ts'
import { registerStatus } from './status.ts'
import { registerTier } from './tier.ts'
import { registerRoute } from './route.ts'
import { registerApp } from './app.ts'
import { registerMigrate } from './migrate.ts'

export type { CliDeps, CliIo, CommonOptions } from './cli-deps.ts'
export { addCommonOptions } from './cli-deps.ts'

/** Registers every operator command of the control plane on the program. */
export function registerProvisioningCommands(program: Command, deps: CliDeps): void {
  registerInit(program, deps)
  const device = program
    .command('device')
    .description('provision, inspect, renew, revoke, disable, enable and update devices, one at a time or in bulk')
  registerDeviceCreate(device, deps)
  registerDeviceCreateBatch(device, deps)
  registerDeviceList(device, deps)
  registerDeviceShow(device, deps)
  registerDeviceRenew(device, deps)
  registerDeviceRevoke(device, deps)
  registerDeviceStatus(device, deps)
  registerDeviceLimits(device, deps)
  registerDeviceUpdate(device, deps)
  registerDeviceBulk(device, deps)
  registerCrl(program, deps)
  registerClaim(program, deps)
  registerCa(program, deps)
  registerAudit(program, deps)
  registerApiKey(program, deps)
  registerSettings(program, deps)
  registerTier(program, deps)
  registerRoute(program, deps)
  registerApp(program, deps)
  registerCheck(program, deps)
  registerStatus(program, deps)
  registerMigrate(program, deps)
}
