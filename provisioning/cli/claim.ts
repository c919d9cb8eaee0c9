import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { ClaimView, CreatedClaim, NewClaim } from '../claims/claim-service.ts'
import { fsyncDir, writeFileAtomic } from '../data-dir/atomic-file.ts'
import { ClaimOptionsInvalid, OutputExists } from '../errors.ts'
import {
  addCommonOptions,
  addJsonOption,
  positiveInt,
  printJson,
  readInputFile,
  withAuthority,
  type CliDeps,
  type CommonOptions,
} from './cli-deps.ts'
import { table } from './device-list.ts'

interface CreateOptions extends CommonOptions {
  group: string
  tier?: string
  maxUses?: number
  expires: string
  idPattern?: string
  allowIds?: string
  tokens?: number
  out: string
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const

/** `--expires`: a duration from now (`30m`, `24h`, `7d`, `2w`) or an ISO date / date-time. */
export function parseClaimExpiry(text: string): { expiresInMs: number } | { expiresAt: Date } {
  const rel = /^(\d{1,6})([mhdw])$/.exec(text.trim())
  if (rel && Number(rel[1]) >= 1) return { expiresInMs: Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS] }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    const at = new Date(text.trim())
    if (!Number.isNaN(at.getTime())) return { expiresAt: at }
  }
  throw new ClaimOptionsInvalid(
    `--expires '${text.slice(0, 40)}': use a duration such as 30m, 24h or 7d, or an ISO date such as 2027-01-31`,
  )
}

/** One device id per line; blank lines and `#` comments are skipped. */
export function readAllowedIds(path: string): string[] {
  return Buffer.from(readInputFile(path))
    .toString('utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
}

const iso = (d: Date | null): string | null => d?.toISOString() ?? null

export function claimJson(c: ClaimView) {
  return {
    claimId: c.id,
    group: c.group,
    tier: c.tier,
    maxUses: c.maxUses,
    uses: c.uses,
    expiresAt: iso(c.expiresAt),
    idPattern: c.idPattern,
    allowedIds: c.allowedIds,
    tokensRequired: c.tokensRequired,
    status: c.status,
    revokedAt: iso(c.revokedAt),
    serial: c.serial,
    fingerprint: c.fingerprint,
    certificateNotAfter: iso(c.notAfter),
    createdAt: iso(c.createdAt),
    createdBy: c.createdBy,
  }
}

/** <staging>/<claimId>/{cert.pem, key.pem 0600, ca.pem, claim.json, tokens.txt 0600}. */
function writeClaimBundle(dir: string, created: CreatedClaim): void {
  mkdirSync(dir, { mode: 0o700 })
  writeFileAtomic(
    join(dir, 'cert.pem'),
    created.certificatePem.endsWith('\n') ? created.certificatePem : `${created.certificatePem}\n`,
    0o644,
  )
  writeFileAtomic(join(dir, 'key.pem'), created.privateKeyPem, 0o600)
  writeFileAtomic(join(dir, 'ca.pem'), created.chainPem, 0o644)
  writeFileAtomic(join(dir, 'claim.json'), `${JSON.stringify(claimJson(created.claim), null, 2)}\n`, 0o644)
  if (created.tokens.length) writeFileAtomic(join(dir, 'tokens.txt'), `${created.tokens.join('\n')}\n`, 0o600)
}

/** What bounds the claim, in words; says so when the default max uses was applied. */
function boundOf(c: ClaimView, options: CreateOptions): string {
  if (c.maxUses !== null && options.maxUses === undefined)
    return `max uses ${c.maxUses} (the default: give --max-uses, --tokens or --allow-ids to choose)`
  if (c.maxUses !== null) return `max uses ${c.maxUses}`
  return c.tokensRequired ? 'one device per token' : 'only the allowed ids'
}

/** gatehouse claim create | list | revoke (docs/device-lifecycle.md). */
export function registerClaim(program: Command, deps: CliDeps): void {
  const claim = program.command('claim').description('claim certificates: zero-touch provisioning of devices over MQTT')

  const create = claim
    .command('create')
    .description('create a claim: a certificate and key a production batch shares to provision itself')
    .requiredOption('--group <group>', 'the group every device it provisions joins')
    .option('--tier <tier>', 'their tier (default from config: standard)')
    .option(
      '--max-uses <n>',
      'how many devices it may provision (default 10 unless --tokens or --allow-ids bound it)',
      positiveInt('--max-uses'),
    )
    .option('--expires <when>', 'how long it provisions: 30m, 24h, 7d, or an ISO date', '7d')
    .option('--id-pattern <re>', 'requested device ids must fully match this regular expression')
    .option('--allow-ids <file>', 'requested device ids must be listed in this file (one per line)')
    .option('--tokens <n>', 'also make N one-time tokens; each request must carry an unused one', positiveInt('--tokens'))
    .option('--out <dir>', 'where <claimId>/{cert.pem,key.pem,ca.pem,claim.json} go', './claims')
  addJsonOption(addCommonOptions(create)).action(async (options: CreateOptions) => {
    const req: NewClaim = {
      group: options.group,
      ...(options.tier !== undefined && { tier: options.tier }),
      ...(options.maxUses !== undefined && { maxUses: options.maxUses }),
      ...parseClaimExpiry(options.expires),
      ...(options.idPattern !== undefined && { idPattern: options.idPattern }),
      ...(options.allowIds !== undefined && { allowedIds: readAllowedIds(options.allowIds) }),
      ...(options.tokens !== undefined && { tokens: options.tokens }),
    }
    await withAuthority(deps, options, async (_authority, opened) => {
      const prepared = await opened.claims.prepare(req, deps.actor)
      const { created } = prepared
      const target = join(options.out, created.claim.id)
      mkdirSync(options.out, { recursive: true, mode: 0o700 })
      if (existsSync(target)) throw new OutputExists(target)
      const staging = mkdtempSync(join(options.out, '.gatehouse-staging-'))
      try {
        writeClaimBundle(join(staging, created.claim.id), created)
        await prepared.commit()
        renameSync(join(staging, created.claim.id), target)
      } finally {
        rmSync(staging, { recursive: true, force: true })
      }
      fsyncDir(options.out)
      const files = ['cert.pem', 'key.pem', 'ca.pem', 'claim.json', ...(created.tokens.length ? ['tokens.txt'] : [])]
      if (options.json) return printJson(deps.io, { ...claimJson(created.claim), path: target, files, tokens: created.tokens })
      const c = created.claim
      deps.io.out(
        `created claim ${c.id} (group ${c.group}, tier ${c.tier}, ${boundOf(c, options)})\n` +
          `  provisions until  ${c.expiresAt.toISOString()}\n  certificate until ${c.notAfter.toISOString()}\n` +
          `  files             ${target}/{${files.join(',')}} (key.pem${created.tokens.length ? ', tokens.txt' : ''} 0600)\n` +
          (created.tokens.length ? `  tokens (shown once; stored hashed):\n${created.tokens.map((t) => `    ${t}\n`).join('')}` : ''),
      )
    })
  })

  const list = claim.command('list').description('list claims (never their keys or tokens)')
  addJsonOption(addCommonOptions(list)).action(async (options: CommonOptions) => {
    await withAuthority(deps, options, async (_authority, opened) => {
      const claims = await opened.claims.list()
      if (options.json) return printJson(deps.io, claims.map(claimJson))
      if (claims.length === 0) return deps.io.out('no claims\n')
      const row = (c: ClaimView) => [c.id, c.group, c.tier, `${c.uses}/${c.maxUses ?? '-'}`, c.expiresAt.toISOString(), c.status]
      deps.io.out(table([['CLAIM', 'GROUP', 'TIER', 'USES', 'EXPIRES', 'STATUS'], ...claims.map(row)]))
    })
  })

  const revoke = claim.command('revoke <claimId>').description('revoke a claim, permanently; its live sessions are closed')
  addJsonOption(addCommonOptions(revoke)).action(async (claimId: string, options: CommonOptions) => {
    await withAuthority(deps, options, async (_authority, opened) => {
      const revoked = await opened.claims.revoke(claimId, deps.actor)
      if (options.json) return printJson(deps.io, claimJson(revoked))
      deps.io.out(`revoked claim ${revoked.id}\n`)
    })
  })
}
