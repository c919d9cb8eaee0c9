import type { Command } from 'commander'
import type { CertificateRecord } from '../store/registry-store.ts'
import { addCommonOptions, addJsonOption, printJson, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { deviceJson, table } from './device-list.ts'

export function certificateJson(c: CertificateRecord) {
  return {
    serial: c.serial,
    fingerprint: c.fingerprint,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    status: c.status,
    supersededAt: c.supersededAt?.toISOString() ?? null,
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.revocationReason,
  }
}

export function registerDeviceShow(device: Command, deps: CliDeps): void {
  const cmd = device.command('show <id>').description("show a device and every certificate it has held")
  addJsonOption(addCommonOptions(cmd)).action(async (id: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (authority) => {
      const { device: d, certificates } = authority.getDevice(id)
      if (options.json) return printJson(deps.io, { ...deviceJson(d), certificates: certificates.map(certificateJson) })
      deps.io.out(`device   ${d.id}\ngroup    ${d.group ?? '-'}\ntier     ${d.tier}\nstatus   ${d.status}\ncreated  ${d.createdAt.toISOString()}\n\n`)
      deps.io.out(
        table([
          ['SERIAL', 'STATUS', 'NOT AFTER', 'FINGERPRINT'],
          ...certificates.map((c) => [c.serial, c.status + (c.revocationReason ? ` (${c.revocationReason})` : ''), c.notAfter.toISOString(), c.fingerprint]),
        ]),
      )
    })
  })
}
