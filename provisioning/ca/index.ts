// The CA of a data directory: its keystore, the one rotate entry point (rotateCa), the reload of a
// running Gatehouse after a rotation, and the CRLs. The rest of provisioning/ reaches it through this file.
export { initDataDir, loadCa, loadCaCertificates, loadServerTls, type InitResult } from './keystore.ts'
export { isKeyReference, type Pkcs11Location } from './pkcs11-token.ts'
export { describeCa, rotateCa, showCa, type CaCertificateInfo, type CaOverview, type CaRotationSummary } from './lifecycle.ts'
export { keepCaCurrent } from './keep-current.ts'
export { recordInterruptedRotation } from './rotation-journal.ts'
export { createCrlService, storedCrlNextUpdate, type CrlSnapshot } from './crl-service.ts'
