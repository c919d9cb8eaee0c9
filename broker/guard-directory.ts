import type { Logger } from 'pino'
import type { DeviceDirectory } from './device-directory.ts'

/**
 * The directory as the broker uses it: calls go through the original object (a class facade keeps its
 * `this`), an audit that throws is logged instead of breaking an aedes callback, and a broker listener
 * that throws never reaches the control plane's event emitter.
 */
export function guardDirectory(directory: DeviceDirectory, log: Logger): DeviceDirectory {
  return {
    lookup: (identity) => directory.lookup(identity),
    lookupDeviceById: (deviceId) => directory.lookupDeviceById(deviceId),
    lookupClaim: (identity, claimId) => directory.lookupClaim(identity, claimId),
    ...(directory.lookupApp && {
      lookupApp: (identity, name) => (directory.lookupApp as NonNullable<DeviceDirectory['lookupApp']>)(identity, name),
    }),
    onEvent: (listener) =>
      directory.onEvent((event) => {
        try {
          listener(event)
        } catch (err) {
          log.error({ err, event: event.type, deviceId: 'deviceId' in event ? event.deviceId : null }, 'control event handling failed')
        }
      }),
    audit: (record) => {
      try {
        directory.audit(record)
      } catch (err) {
        log.error({ err, action: record.action, subject: record.subject }, 'audit failed')
      }
    },
  }
}
