/**
 * Prompt templates: `{{path.to.value}}` is replaced by the value at that path of the variables (own
 * properties only), strings as they are, everything else as JSON, missing paths as ''. Nothing is
 * evaluated: a template is data, not code.
 */
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\s*\}\}/g

export function lookupPath(root: unknown, path: string): unknown {
  let node: unknown = root
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

export function renderTemplate(template: string, variables: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (_m, path: string) => {
    const v = lookupPath(variables, path)
    if (v === undefined || v === null) return ''
    if (typeof v === 'string') return v
    return JSON.stringify(v)
  })
}
