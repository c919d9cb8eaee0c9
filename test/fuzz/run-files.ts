import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { gunzipSync, gzipSync } from 'node:zlib'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { main } from '../../cli.ts'
import { type FileCase, type FileTarget, fileCases } from './file-cases.ts'

/**
 * Fuzzes the operator's files (test/fuzz/file-cases.ts) through the real CLI, in this process, each case on a
 * fresh copy of an initialised data directory. What must hold for every input: exit 0 (a valid file, taken),
 * or a non-zero exit with one coded error (`--json`: {"code": "GH_...", ...}, never GH_CLI_INTERNAL) and the
 * registry exactly as before (every row of every table); never a stack trace, never a hang (a case bound).
 * A case that breaks this is saved under test/fixtures/fuzz-regressions/files/ (the exact bytes, gzipped: the
 * enormous lines compress to almost nothing) and replayed by every run.
 */

export const FILE_REGRESSIONS_DIR = join(import.meta.dirname, '..', 'fixtures', 'fuzz-regressions', 'files')
const CASE_BOUND_MS = 60_000

export interface FileFuzzResult {
  cases: number
  regressions: number
  outcomes: Record<string, number>
  failures: { id: string; problem: string; saved?: string }[]
  ms: number
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'gatehouse', ...args], {
    out: (s) => void (stdout += s),
    err: (s) => void (stderr += s),
    isTty: false,
    env: { GATEHOUSE_LOG_LEVEL: 'silent' },
  })
  return { code, stdout, stderr }
}

/** every row of every table, as one string: equal before and after a refused input */
function registryDump(dataDir: string): string {
  const db = new Database(join(dataDir, 'gatehouse.db'), { readonly: true, fileMustExist: true })
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]
    return JSON.stringify(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).raw().all()]))
  } finally {
    db.close()
  }
}

/** the command a target's file goes to, with the file at `file` (the config is gatehouse.json itself) */
function commandFor(target: FileTarget, file: string, dataDir: string): string[] {
  const common = ['--json', '--data-dir', dataDir]
  switch (target) {
    case 'settings-patch':
      return ['settings', 'set', '--defaults', '--from-file', file, ...common]
    case 'settings-schema':
      return ['settings', 'schema', 'set', file, '--group', 'pumps', ...common]
    case 'claim-allow-ids':
      return ['claim', 'create', '--group', 'pumps', '--allow-ids', file, '--out', join(dataDir, '..', 'claims'), ...common]
    case 'config':
      return ['settings', 'set', '--defaults', 'rate=5', ...common]
  }
}

export function loadFileRegressions(dir = FILE_REGRESSIONS_DIR): FileCase[] {
  let names: string[] = []
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'))
  } catch {
    return []
  }
  return names.sort().map((name) => {
    const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { target: FileTarget; gzipBase64: string }
    return { id: `regression/${name}`, target: r.target, bytes: gunzipSync(Buffer.from(r.gzipBase64, 'base64')) }
  })
}

/** Runs one case; undefined when it held, else what went wrong. Also returns the outcome (exit 0, or the code). */
async function runCase(template: string, c: FileCase): Promise<{ outcome: string; problem?: string }> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-filefuzz-'))
  try {
    cpSync(template, work, { recursive: true })
    const dataDir = join(work, 'data')
    const file = c.target === 'config' ? join(dataDir, 'gatehouse.json') : join(work, 'input')
    writeFileSync(file, c.bytes)
    const before = registryDump(dataDir)
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), CASE_BOUND_MS)))
    const res = await Promise.race([cli(commandFor(c.target, file, dataDir)), bound])
    clearTimeout(timer)
    if (res === 'hang') return { outcome: 'hang', problem: `no answer within ${CASE_BOUND_MS} ms` }
    const output = `${res.stdout}\n${res.stderr}`
    if (/\n\s+at .+[:(]\d+/.test(output)) return { outcome: 'stack', problem: `a stack trace: ${res.stderr.slice(0, 300)}` }
    if (res.code === 0) return { outcome: 'ok' }
    let code: string | undefined
    try {
      code = (JSON.parse(res.stderr.trim().split('\n').pop() ?? '') as { code?: string }).code
    } catch {
      return { outcome: 'uncoded', problem: `exit ${res.code} without a coded JSON error: ${res.stderr.slice(0, 300)}` }
    }
    if (!code?.startsWith('GH_') || code === 'GH_CLI_INTERNAL')
      return { outcome: String(code), problem: `exit ${res.code}: ${res.stderr.slice(0, 300)}` }
    if (registryDump(dataDir) !== before) return { outcome: code, problem: `refused with ${code}, but the registry changed` }
    return { outcome: code }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

export async function runFileFuzz(options: {
  seed: number
  cases: number
  /** where a failing input is saved (the script: FILE_REGRESSIONS_DIR; the test: nowhere) */
  saveTo?: string
  progress?: (line: string) => void
}): Promise<FileFuzzResult> {
  const started = performance.now()
  const template = mkdtempSync(join(tmpdir(), 'gatehouse-filefuzz-template-'))
  const result: FileFuzzResult = { cases: options.cases, regressions: 0, outcomes: {}, failures: [], ms: 0 }
  try {
    const init = await cli(['init', '--data-dir', join(template, 'data')])
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`)
    const regressions = loadFileRegressions()
    result.regressions = regressions.length
    const all = [...regressions, ...fileCases(options.seed, options.cases)]
    for (const [n, c] of all.entries()) {
      const r = await runCase(template, c)
      result.outcomes[r.outcome] = (result.outcomes[r.outcome] ?? 0) + 1
      if (r.problem) {
        const failure: FileFuzzResult['failures'][number] = { id: c.id, problem: r.problem }
        if (options.saveTo && !c.id.startsWith('regression/')) {
          mkdirSync(options.saveTo, { recursive: true })
          const name = `${c.target}-${createHash('sha256').update(c.bytes).digest('hex').slice(0, 16)}.json`
          writeFileSync(
            join(options.saveTo, name),
            `${JSON.stringify({ target: c.target, found: c.id, problem: r.problem.slice(0, 300), gzipBase64: gzipSync(c.bytes).toString('base64') }, null, 2)}\n`,
          )
          failure.saved = name
        }
        result.failures.push(failure)
      }
      if ((n + 1) % 25 === 0) options.progress?.(`${n + 1} of ${all.length} files: ${JSON.stringify(result.outcomes)}`)
    }
  } finally {
    rmSync(template, { recursive: true, force: true })
  }
  result.ms = performance.now() - started
  return result
}
