import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { APP_CLASSES, type AppView } from '../apps/index.ts'
import type { PreparedApp } from '../apps/app-service.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'
import { OutputExists } from '../errors.ts'
import { addCommonOptions, addJsonOption, printJson, readInputFile, withAuthority, type CliDeps, type CommonOptions } from './cli-deps.ts'
import { table } from './device-list.ts'

interface IssueOptions extends CommonOptions {
  csr?: string
  out: string
}

interface CreateOptions extends IssueOptions {
  groups?: string
  allGroups?: boolean
  classes: string
}

const CREATE_HELP = `
The app connects over mutual TLS with the certificate in <out>/<name>/ (cert.pem, key.pem 0600, ca.pem)
and the MQTT client id app:<name>, with a clean session and no will. It may subscribe inside its scope
(devices/+/telemetry/#, devices/<id>/reported, ...) and publishes nothing. Example:
  gatehouse app create dashboard --groups pumps --classes telemetry
  mosquitto_sub -h localhost -p 8883 --cafile apps/dashboard/ca.pem --cert apps/dashboard/cert.pem \\
    --key apps/dashboard/key.pem -i app:dashboard -t 'devices/+/telemetry/#' -v`

const list = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

/** <out>/<name>/{cert.pem, key.pem 0600 (unless from a CSR), ca.pem}, staged, registered, then moved into place. */
async function writeThenCommit(out: string, prepared: PreparedApp): Promise<string> {
  const { issued } = prepared
  const target = join(out, issued.app.name)
  mkdirSync(out, { recursive: true, mode: 0o700 })
  if (existsSync(target)) throw new OutputExists(target)
  const staging = mkdtempSync(join(out, '.gatehouse-staging-'))
  try {
    const dir = join(staging, issued.app.name)
    mkdirSync(dir, { mode: 0o700 })
    writeFileAtomic(
      join(dir, 'cert.pem'),
      issued.certificatePem.endsWith('\n') ? issued.certificatePem : `${issued.certificatePem}\n`,
      0o644,
    )
    writeFileAtomic(join(dir, 'ca.pem'), issued.chainPem, 0o644)
    if (issued.privateKeyPem) writeFileAtomic(join(dir, 'key.pem'), issued.privateKeyPem, 0o600)
    await prepared.commit()
    renameSync(dir, target)
    fsyncDir(out)
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
  return target
}

function printIssued(deps: CliDeps, options: IssueOptions, prepared: PreparedApp, target: string, verb: string): void {
  const { issued } = prepared
  if (options.json) return printJson(deps.io, { ...issued.app, issuedSerial: issued.serial, bundle: target })
  deps.io.out(`app ${issued.app.name} ${verb}: certificate ${issued.serial} in ${target}\n`)
  deps.io.out(`scope: groups ${issued.app.groups?.join(',') ?? '(all)'}; classes ${issued.app.classes.join(',')}\n`)
}

function printApp(deps: CliDeps, app: AppView): void {
  deps.io.out(`app ${app.name}: ${app.status}\n`)
  deps.io.out(`groups: ${app.groups?.join(', ') ?? '(all)'}\nclasses: ${app.classes.join(', ')}\n`)
  deps.io.out(`created ${app.createdAt} by ${app.createdBy}${app.revokedAt ? `; revoked ${app.revokedAt}` : ''}\n`)
  deps.io.out(
    table([
      ['SERIAL', 'STATUS', 'NOT AFTER', 'FINGERPRINT'],
      ...app.certificates.map((c) => [c.serial, c.status, c.notAfter, c.fingerprint]),
    ]),
  )
}

/** `gatehouse app create|list|show|renew|revoke`: MQTT identities that read devices' data (README "Apps: telemetry out"). */
export function registerApp(program: Command, deps: CliDeps): void {
  const app = program.command('app').description("apps: MQTT identities that read devices' telemetry within a scope")
  const create = app
    .command('create <name>')
    .description('create an app and issue its certificate (CN app:<name>)')
    .option('--groups <list>', 'the settings groups it reads, comma-separated (e.g. pumps,valves)')
    .addOption(new Option('--all-groups', 'it reads every group (and devices without one)').conflicts('groups'))
    .requiredOption('--classes <list>', `the topic classes it reads, comma-separated: ${APP_CLASSES.join(', ')}`)
    .option('--csr <file>', 'sign this CSR (CN app:<name>) instead of making a key: the key never leaves the app')
    .option('--out <dir>', 'where <name>/{cert.pem,key.pem,ca.pem} go', './apps')
    .addHelpText('after', CREATE_HELP)
  addJsonOption(addCommonOptions(create)).action(async (name: string, options: CreateOptions) => {
    const groups = options.allGroups ? null : list(options.groups ?? '')
    const csr = options.csr === undefined ? undefined : readInputFile(options.csr)
    await withAuthority(deps, options, async (_authority, opened) => {
      const prepared = await opened.apps.prepareCreate({ name, groups, classes: list(options.classes), ...(csr && { csr }) }, deps.actor)
      printIssued(deps, options, prepared, await writeThenCommit(options.out, prepared), 'created')
    })
  })
  addJsonOption(addCommonOptions(app.command('list').description('every app, with its scope and status'))).action(
    async (options: CommonOptions) => {
      await withAuthority(deps, options, async (_authority, { apps }) => {
        const items = await apps.list()
        if (options.json) return printJson(deps.io, { items })
        deps.io.out(
          table([
            ['NAME', 'STATUS', 'GROUPS', 'CLASSES', 'CERTIFICATES', 'CREATED BY'],
            ...items.map((a) => [
              a.name,
              a.status,
              a.groups?.join(',') ?? '(all)',
              a.classes.join(','),
              String(a.certificates.filter((c) => c.status === 'active').length),
              a.createdBy,
            ]),
          ]),
        )
      })
    },
  )
  addJsonOption(addCommonOptions(app.command('show <name>').description('an app, its scope and its certificates'))).action(
    async (name: string, options: CommonOptions) => {
      await withAuthority(deps, options, async (_authority, { apps }) => {
        const found = await apps.get(name)
        if (options.json) return printJson(deps.io, found)
        printApp(deps, found)
      })
    },
  )
  const renew = app
    .command('renew <name>')
    .description('issue a new certificate; the old one works until you revoke it (app revoke <name> --serial <old>)')
    .option('--csr <file>', 'sign this CSR (CN app:<name>) instead of making a key')
    .option('--out <dir>', 'where <name>/{cert.pem,key.pem,ca.pem} go (must not exist yet)', './apps/renewed')
  addJsonOption(addCommonOptions(renew)).action(async (name: string, options: IssueOptions) => {
    const csr = options.csr === undefined ? undefined : readInputFile(options.csr)
    await withAuthority(deps, options, async (_authority, { apps }) => {
      const prepared = await apps.prepareRenew(name, deps.actor, csr)
      printIssued(deps, options, prepared, await writeThenCommit(options.out, prepared), 'renewed')
    })
  })
  const revoke = app
    .command('revoke <name>')
    .description('revoke an app (permanent), or one certificate of it: its session is closed within a second')
    .option('--serial <serial>', 'revoke only this certificate; the app and its other certificates stay')
  addJsonOption(addCommonOptions(revoke)).action(async (name: string, options: CommonOptions & { serial?: string }) => {
    await withAuthority(deps, options, async (_authority, { apps }) => {
      const revoked = await apps.revoke(name, deps.actor, options.serial)
      if (options.json) return printJson(deps.io, revoked)
      deps.io.out(options.serial ? `app ${name}: certificate ${options.serial} revoked\n` : `app ${name} revoked\n`)
    })
  })
}
