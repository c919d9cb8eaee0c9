import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export interface Asset {
  body: Buffer
  contentType: string
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

const OWN = ['sign-in.html', 'overview.html', 'device.html', 'dashboard.css', 'common.js', 'sign-in.js', 'overview.js', 'device.js']
// uPlot's browser build, served as it ships (no build step)
const UPLOT = { 'uplot.min.js': 'uplot/dist/uPlot.iife.min.js', 'uplot.min.css': 'uplot/dist/uPlot.min.css' }

const typeOf = (name: string): string => TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream'

/**
 * The dashboard's files, read once into memory: a fixed list by name, so no request path ever reaches
 * the file system.
 */
export function loadDashboardAssets(): Map<string, Asset> {
  const dir = fileURLToPath(new URL('./assets/', import.meta.url))
  const require = createRequire(import.meta.url)
  const assets = new Map<string, Asset>()
  for (const name of OWN) assets.set(name, { body: readFileSync(dir + name), contentType: typeOf(name) })
  for (const [name, path] of Object.entries(UPLOT))
    assets.set(name, { body: readFileSync(require.resolve(path)), contentType: typeOf(name) })
  return assets
}
