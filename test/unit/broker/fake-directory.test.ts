import { deviceDirectoryContract, NOW } from '../../contract/device-directory.contract.ts'
import { fixedClock } from '../../helpers/clock.ts'
import { createFakeDirectory } from '../../helpers/fake-directory.ts'

// The fake the broker tests run on answers as the registry does (the registry runs the same contract in integration/).
deviceDirectoryContract('the fake directory', () => {
  const clock = fixedClock(NOW)
  const fake = createFakeDirectory(clock)
  return {
    directory: fake,
    clock,
    addDevice: (deviceId, opts) => void fake.addDevice(deviceId, opts),
    addCertificate: (c) => void fake.addCertificate(c.deviceId, c.serial, 'active', c.fingerprint),
    revokeDevice: (deviceId) => fake.revokeDevice(deviceId),
    disableDevice: (deviceId) => fake.disableDevice(deviceId),
    revokeCertificate: (serial) => fake.revokeCertificate(serial),
    supersedeCertificate: (serial, at) => fake.supersedeCertificate(serial, at),
    addClaim: (c) =>
      void fake.addClaim(c.claimId, c.serial, { fingerprint: c.fingerprint, expiresAt: c.expiresAt, usedUp: c.usedUp === true }),
    revokeClaim: (claimId) => fake.revokeClaim(claimId),
    deliver: () => {},
    audits: () => fake.audits,
  }
})
