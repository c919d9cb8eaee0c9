// The control plane's public face. Other folders import provisioning/ only through this file.
export * from './errors.ts'
export * from './events.ts'
export { createDeviceAuthority } from './authority/device-authority.ts'
export type {
  Actor,
  AuthorityDeps,
  AuthorityOptions,
  DeviceAuthority,
  DeviceDetails,
  IssuedCertificate,
  IssuedDevice,
  NewDevice,
  PreparedDevice,
  RenewalRequest,
} from './authority/device-authority.ts'
export { batchIds, MAX_BATCH, type BatchRequest, type PreparedBatch } from './authority/batch.ts'
export type { CrlSnapshot } from './authority/crl-service.ts'
export { createRegistryDirectory, type DeviceLookup, type RefusalReason, type RegistryDirectory } from './registry-directory.ts'
export { SqliteRegistryStore } from './store/sqlite-registry-store.ts'
export { InMemoryRegistryStore } from './store/in-memory-registry-store.ts'
export type * from './store/registry-store.ts'
export { initDataDir, loadCa, loadServerTls, type InitOptions, type InitResult, type ServerTlsMaterial } from './data-dir/ca-keystore.ts'
export { dataDirLayout, type DataDirLayout } from './data-dir/layout.ts'
export { writeFileAtomic } from './data-dir/atomic-file.ts'
export { writeDeviceBundle, type BundleFormat } from './bundles/write-bundle.ts'
export { initControlPlane, openControlPlane, type ControlPlane, type ControlPlaneDeps } from './control-plane.ts'
