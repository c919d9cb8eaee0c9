import type { FromSchema } from '../../certs/index.ts'

const P = {
  /** the largest layer (fleet, group or device) of a settings document, JSON bytes; a device's report may be twice this */
  maxLayerBytes: { type: 'integer', minimum: 1024, maximum: 1024 * 1024, default: 64 * 1024 },
  /** the deepest nesting of a settings document */
  maxDepth: { type: 'integer', minimum: 2, maximum: 64, default: 16 },
  /** the largest group JSON Schema, JSON bytes */
  maxSchemaBytes: { type: 'integer', minimum: 1024, maximum: 256 * 1024, default: 32 * 1024 },
} as const

/**
 * Bounds on settings documents and group JSON Schemas: the one declaration, with ranges and defaults.
 * config.ts embeds it as `settingsLimits`; the settings service falls back to the same defaults.
 */
export const SETTINGS_LIMITS_SCHEMA = { type: 'object', additionalProperties: false, properties: P, default: {} } as const

export type SettingsLimitsOptions = FromSchema<typeof SETTINGS_LIMITS_SCHEMA>

export const DEFAULT_SETTINGS_LIMITS: Readonly<SettingsLimitsOptions> = Object.freeze({
  maxLayerBytes: P.maxLayerBytes.default,
  maxDepth: P.maxDepth.default,
  maxSchemaBytes: P.maxSchemaBytes.default,
})
