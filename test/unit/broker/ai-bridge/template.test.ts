import { describe, expect, it } from 'vitest'
import { renderTemplate } from '../../../../broker/ai-bridge/template.ts'

describe('renderTemplate', () => {
  const vars = {
    device: { id: 'p1', group: '' },
    settings: { site: { name: 'North', floors: 3 } },
    telemetry: [{ v: 1 }],
    flag: false,
    nothing: null,
  }

  it.each([
    ['ok/string', 'id={{device.id}}', 'id=p1'],
    ['ok/spaces', 'id={{ device.id }}', 'id=p1'],
    ['ok/number', '{{settings.site.floors}} floors', '3 floors'],
    ['ok/object-as-json', '{{settings.site}}', '{"name":"North","floors":3}'],
    ['ok/array-as-json', '{{telemetry}}', '[{"v":1}]'],
    ['ok/false', '{{flag}}', 'false'],
    ['ok/null-is-empty', '[{{nothing}}]', '[]'],
    ['ok/missing-is-empty', '[{{settings.nope.deeper}}]', '[]'],
    ['ok/no-prototype', '[{{device.constructor}}][{{device.__proto__}}][{{settings.toString}}]', '[][][]'],
    ['ok/no-code', '{{ device.id + 1 }} {{process.env.HOME}}', '{{ device.id + 1 }} '],
    ['ok/single-braces', '{device.id}', '{device.id}'],
  ])('%s', (_name, template, expected) => {
    expect(renderTemplate(template, vars)).toBe(expected)
  })
})
