/**
 * Versioned schema migrations. The registry's PRAGMA user_version is the number of migrations applied;
 * each runs once, in order, inside one transaction with the version bump. Never edit a shipped
 * migration: append a new one.
 */
export interface Migration {
  version: number
  name: string
  sql: string
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'registry, audit log, change feed',
    sql: `
      CREATE TABLE devices (
        id          TEXT PRIMARY KEY,
        group_name  TEXT,
        tier        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX devices_group ON devices (group_name, id);

      CREATE TABLE certificates (
        serial             TEXT PRIMARY KEY,
        device_id          TEXT NOT NULL REFERENCES devices (id),
        fingerprint        TEXT NOT NULL UNIQUE,
        not_before         TEXT NOT NULL,
        not_after          TEXT NOT NULL,
        status             TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
        superseded_at      TEXT,
        revoked_at         TEXT,
        revocation_reason  TEXT,
        pem                TEXT NOT NULL,
        created_at         TEXT NOT NULL
      ) STRICT;
      CREATE INDEX certificates_device ON certificates (device_id, created_at);
      CREATE INDEX certificates_revoked ON certificates (status) WHERE status = 'revoked';

      CREATE TABLE audit_log (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        subject  TEXT NOT NULL,
        details  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_subject ON audit_log (subject, id);
      CREATE INDEX audit_action ON audit_log (action, id);

      CREATE TABLE events (
        seq   INTEGER PRIMARY KEY AUTOINCREMENT,
        at    TEXT NOT NULL,
        type  TEXT NOT NULL,
        data  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX events_at ON events (at);

      CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
      ) STRICT;
    `,
  },
]
