import { LabelsInvalid } from '../errors.ts'
import type { Labels } from '../store/registry-store.ts'

// Labels on a device (key=value): what an operator or an app selects devices by. Bounded so that a key
// with devices:write cannot grow the registry without limit: MAX_LABELS per device, short keys and values.
export const MAX_LABELS = 32
export const LABEL_KEY_PATTERN_SOURCE = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$'
export const LABEL_VALUE_PATTERN_SOURCE = '^[A-Za-z0-9._:/@+-]{1,128}$'
const KEY = new RegExp(LABEL_KEY_PATTERN_SOURCE)
const VALUE = new RegExp(LABEL_VALUE_PATTERN_SOURCE)

const shown = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v)

function assertLabel(key: string, value: unknown): void {
  if (!KEY.test(key)) throw new LabelsInvalid(`key ${shown(key)}`)
  if (typeof value !== 'string' || !VALUE.test(value)) throw new LabelsInvalid(`value of '${key}': ${shown(value)}`)
}

/** A device's labels, checked: an object of at most MAX_LABELS valid key=value pairs. */
export function assertLabels(labels: unknown): Labels {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new LabelsInvalid('not an object of key=value pairs')
  const entries = Object.entries(labels)
  if (entries.length > MAX_LABELS) throw new LabelsInvalid(`${entries.length} labels, more than ${MAX_LABELS}`)
  for (const [key, value] of entries) assertLabel(key, value)
  return Object.fromEntries(entries) as Labels
}

/** Applies a change to labels: a string sets a label, null removes it (JSON merge patch). */
export function patchLabels(current: Labels, patch: Record<string, string | null>): Labels {
  const next: Labels = { ...current }
  for (const [key, value] of Object.entries(patch)) {
    if (!KEY.test(key)) throw new LabelsInvalid(`key ${shown(key)}`) // before it is used as a property name
    if (value === null) delete next[key]
    else next[key] = value
  }
  return assertLabels(next)
}

/** `key=value` strings (a CLI flag or a query parameter, repeated) as labels; they select devices that carry all. */
export function parseLabelPairs(pairs: readonly string[]): Labels {
  const labels: Labels = {}
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    if (at < 1) throw new LabelsInvalid(`${shown(pair)} is not key=value`)
    const key = pair.slice(0, at)
    const value = pair.slice(at + 1)
    assertLabel(key, value) // before it is used as a property name
    if (Object.hasOwn(labels, key)) throw new LabelsInvalid(`key '${key}' given twice`)
    labels[key] = value
  }
  return assertLabels(labels)
}
