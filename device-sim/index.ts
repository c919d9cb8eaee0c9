// device-sim/: simulated devices and fleets. Other folders import only this file (docs/conventions.md §2).
export { closeClients, connectDevice, connectFleet, secureContextOf, type DeviceBundle } from './fleet.ts'
