import createError from '@fastify/error'

// Coded errors of certs/ (CONVENTIONS.md §8). Each code has an entry in docs/errors.md.
export const InvalidDeviceId = createError(
  'GH_DEVICE_ID_INVALID',
  "invalid device id '%s': use 1-64 characters of A-Z a-z 0-9 . _ - (no slashes, spaces or MQTT wildcards)",
  400,
)
