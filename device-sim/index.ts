// device-sim/: simulated devices and fleets. Other folders import only this file (CONVENTIONS.md §2).
export { closeClients, connectDevice, connectFleet, secureContextOf, type DeviceBundle } from './fleet.ts'
