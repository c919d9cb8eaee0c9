import { finding, type Finding } from './finding.ts'
import type { FleetSnapshot } from './fleet-snapshot.ts'

/** CA and server keys stored without a passphrase: whoever reads the file can issue devices. */
export function unencryptedKeys(s: FleetSnapshot): Finding[] {
  return finding(
    {
      id: 'ca-key-unencrypted',
      severity: 'high',
      title: 'CA or server keys stored without a passphrase',
      kind: 'file',
      fix: (ids) =>
        `openssl pkcs8 -topk8 -v2 aes-256-cbc -in ${ids[0]} -out ${ids[0]}.new && mv ${ids[0]}.new ${ids[0]} && chmod 600 ${ids[0]} ` +
        '(each key, one passphrase for all), then run Gatehouse with GATEHOUSE_CA_PASSPHRASE or GATEHOUSE_CA_PASSPHRASE_FILE',
    },
    s.keyFiles.filter((k) => !k.encrypted).map((k) => k.path),
  )
}

/** Keys, the registry, settings.key and the folders holding them, readable or writable by group or others. */
export function looseFileModes(s: FleetSnapshot): Finding[] {
  const loose = s.privatePaths.filter((p) => (p.mode & 0o077) !== 0)
  return finding(
    {
      id: 'data-dir-file-modes',
      severity: 'high',
      title: 'private files or folders of the data directory open to group or others',
      kind: 'file',
      fix: (ids) => `chmod go-rwx ${ids.join(' ')}`,
    },
    loose.map((p) => p.path),
  )
}
