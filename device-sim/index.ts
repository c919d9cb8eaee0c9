// device-sim/: simulated devices and fleets. Other folders import only this file (CONVENTIONS.md §2).
export {
  closeClients,
  connectDevice,
  connectFleet,
  secureContextOf,
  type ConnectedDevice,
  type ConnectOptions,
  type ConnectOutcome,
  type DeviceBundle,
  type Fleet,
  type FleetOptions,
} from './fleet.ts'
