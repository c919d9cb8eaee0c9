import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { Random } from '../../certs/index.ts'
import { FileUnreadable } from '../errors.ts'
import type { ApiKeyService } from '../api-keys/api-key-service.ts'
import type { AppService } from '../apps/index.ts'
import type { ClaimService } from '../claims/claim-service.ts'
import type { CaOverview, CaRotationSummary } from '../ca/index.ts'
import type { CheckOptions, CheckReport } from '../checks/index.ts'
import type { DeviceAuthority } from '../authority/device-authority.ts'
import type { SettingsService } from '../settings/settings-service.ts'
import type { HealthTarget } from '../health/health-client.ts'
import type { LimitsService } from '../limits/index.ts'
import type { RouteService, RouteTester } from '../routes/index.ts'

/** What a command prints to; tests pass a recorder, cli.ts passes the process's streams. */
export interface CliIo {
  out(text: string): void
  err(text: string): void
  /** whether stderr is a terminal (progress bars) */
  isTty: boolean
  env: NodeJS.ProcessEnv
}

/** Options every command takes (see addCommonOptions). */
export interface CommonOptions {
  dataDir?: string
  json?: boolean
}

export interface OpenedAuthority {
  authority: DeviceAuthority
  settings: SettingsService
  apiKeys: ApiKeyService
  claims: ClaimService
  /** per-tier and per-device limits */
  limits: LimitsService
  /** telemetry routes, and the sender `route test` uses (the broker's, with the configured timeout and SSRF rule) */
  routes: RouteService
  routeTester: RouteTester
  /** app identities for MQTT (gatehouse app) */
  apps: AppService
  /** settles once the registry is closed (the CLI's exit waits for it) */
  close(): Promise<void>
}

export interface InitSummary {
  dataDir: string
  createdCa: boolean
  serverCertIssued: boolean
  caChain: string
  rootFingerprint: string
  encrypted: boolean
  /** the label of the PKCS#11 token holding the CA keys, when they are in one */
  pkcs11Token?: string
}

/**
 * What the composition root hands to every command. Commands parse arguments, call the authority and
 * print; they hold no business logic and never read config or env themselves (docs/conventions.md §16).
 */
export interface CliDeps {
  io: CliIo
  /** who is acting, for the audit log: operator:<user> */
  actor: string
  random: Random
  openAuthority(options: CommonOptions): Promise<OpenedAuthority>
  init(
    options: CommonOptions & {
      hostname?: string[]
      keyAlgorithm?: string
      pkcs11Module?: string
      pkcs11Token?: string
      pkcs11PinFile?: string
    },
  ): Promise<InitSummary>
  /** `gatehouse ca rotate|show` (provisioning/ca/lifecycle.ts): the composition root adds config and secrets */
  ca: {
    rotate(options: CommonOptions & { keyAlgorithm?: string }): Promise<CaRotationSummary>
    show(options: CommonOptions): Promise<CaOverview>
  }
  /** `gatehouse check` (provisioning/checks/): the fleet checks over the configured data directory */
  check(options: CommonOptions & Partial<CheckOptions>): Promise<CheckReport>
  /** `gatehouse status`: where the configuration says the API answers, and the data directory */
  /** `gatehouse status`: where Gatehouse serves, and the registry whose devices it counts (databaseUrl: on PostgreSQL) */
  statusTarget(
    options: CommonOptions & { httpHost?: string; httpPort?: number },
  ): Promise<{ target: HealthTarget; dataDir: string; databaseUrl?: string }>
  /** `gatehouse migrate`: the configured data directory's registry file, and the database URL of GATEHOUSE_DATABASE_URL */
  migrateSource(options: CommonOptions): Promise<{ registry: string; databaseUrl: string | undefined }>
}

export function addCommonOptions(cmd: Command): Command {
  return cmd.option('--data-dir <dir>', 'data directory (default ./data, or GATEHOUSE_DATA_DIR)')
}

export function addJsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of text')
}

export async function withAuthority<T>(
  deps: CliDeps,
  options: CommonOptions,
  fn: (authority: DeviceAuthority, opened: OpenedAuthority) => Promise<T>,
): Promise<T> {
  const opened = await deps.openAuthority(options)
  try {
    return await fn(opened.authority, opened)
  } finally {
    await opened.close()
  }
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`)
}

/** Parses a positive integer option, or throws commander's usage error (exit 2). */
export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw Object.assign(new Error(`${name} must be a whole number >= 1, not '${value}'`), { code: 'commander.invalidArgument' })
    }
    return n
  }
}

/** Collects a repeatable option (`--label a=1 --label b=2`) into a list. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

/** Parses a date option (ISO 8601, e.g. 2026-07-01 or 2026-07-01T12:00:00Z), or throws commander's usage error (exit 2). */
export function dateOption(name: string) {
  return (value: string): Date => {
    const d = new Date(value)
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
      throw Object.assign(new Error(`${name} must be a date like 2026-07-01 or 2026-07-01T12:00:00Z, not '${value}'`), {
        code: 'commander.invalidArgument',
      })
    }
    return d
  }
}

export function readInputFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path))
  } catch (err) {
    throw new FileUnreadable(path, (err as NodeJS.ErrnoException).code ?? (err as Error).message, { cause: err })
  }
}

/** PKCS#12 password: GATEHOUSE_P12_PASSWORD, or a fresh random one that is printed once. */
export function p12Password(deps: CliDeps): { password: string; generated: boolean } {
  const fromEnv = deps.io.env.GATEHOUSE_P12_PASSWORD
  if (fromEnv) return { password: fromEnv, generated: false }
  return { password: Buffer.from(deps.random.bytes(18)).toString('base64url'), generated: true }
}
