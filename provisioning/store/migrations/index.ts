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
  {
    version: 2,
    name: 'settings layers, device settings versions and reports, group schemas, API keys',
    sql: `
      -- one row per layer: scope is 'fleet', 'group:<name>' or 'device:<id>'; document is the layer's
      -- JSON object with secret values encrypted ({"$enc": "..."}); revision counts its changes
      CREATE TABLE settings_layers (
        scope       TEXT PRIMARY KEY,
        document    TEXT NOT NULL,
        revision    INTEGER NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
      ) STRICT;

      -- a device's effective-settings version: bumped whenever its merged document changes, never reused
      CREATE TABLE device_settings (
        device_id         TEXT PRIMARY KEY REFERENCES devices (id),
        version           INTEGER NOT NULL,
        digest            TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        reported          TEXT,
        reported_version  INTEGER,
        reported_at       TEXT
      ) STRICT;

      CREATE TABLE settings_schemas (
        group_name  TEXT PRIMARY KEY,
        schema      TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
      ) STRICT;

      -- API keys: only a SHA-256 of the secret part is stored
      CREATE TABLE api_keys (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        secret_hash   TEXT NOT NULL,
        scopes        TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        expires_at    TEXT,
        last_used_at  TEXT,
        revoked_at    TEXT
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'AI usage per device and day, last insights per device',
    sql: `
      -- the AI bridge's daily budgets: one row per device and UTC day ('YYYY-MM-DD'). No foreign key to
      -- devices: the data plane writes it for whatever device it served, and a usage row must never
      -- make a budget write fail.
      CREATE TABLE ai_usage (
        device_id  TEXT NOT NULL,
        day        TEXT NOT NULL,
        requests   INTEGER NOT NULL,
        tokens     INTEGER NOT NULL,
        PRIMARY KEY (device_id, day)
      ) STRICT;

      -- the last N insights per device (pruned on append); data is the insight as JSON
      CREATE TABLE insights (
        id         TEXT PRIMARY KEY,
        device_id  TEXT NOT NULL,
        at         TEXT NOT NULL,
        data       TEXT NOT NULL
      ) STRICT;
      CREATE INDEX insights_device ON insights (device_id, at);
    `,
  },
  {
    version: 4,
    name: 'claims (zero-touch provisioning), their one-time tokens and the devices they provisioned',
    sql: `
      -- a claim: a shared certificate that provisions devices over MQTT (docs/device-lifecycle.md);
      -- its key is handed out once and never stored
      CREATE TABLE claims (
        id               TEXT PRIMARY KEY,
        group_name       TEXT NOT NULL,
        tier             TEXT NOT NULL,
        max_uses         INTEGER,
        uses             INTEGER NOT NULL DEFAULT 0,
        expires_at       TEXT NOT NULL,
        id_pattern       TEXT,
        allowed_ids      TEXT,
        tokens_required  INTEGER NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        revoked_at       TEXT,
        serial           TEXT NOT NULL UNIQUE,
        fingerprint      TEXT NOT NULL UNIQUE,
        not_after        TEXT NOT NULL,
        created_at       TEXT NOT NULL,
        created_by       TEXT NOT NULL
      ) STRICT;

      -- one-time tokens: only a SHA-256 of each is stored
      CREATE TABLE claim_tokens (
        claim_id    TEXT NOT NULL REFERENCES claims (id),
        token_hash  TEXT NOT NULL,
        used_at     TEXT,
        device_id   TEXT,
        PRIMARY KEY (claim_id, token_hash)
      ) STRICT;

      -- which claim provisioned a device, with the SHA-256 of its public key (SPKI): a repeated request
      -- with the same key gets the same certificate back
      CREATE TABLE claim_devices (
        device_id   TEXT PRIMARY KEY REFERENCES devices (id),
        claim_id    TEXT NOT NULL REFERENCES claims (id),
        serial      TEXT NOT NULL,
        key_sha256  TEXT NOT NULL,
        created_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX claim_devices_claim ON claim_devices (claim_id, created_at);
    `,
  },
  {
    version: 5,
    name: 'claim certificates kept for the CRL; claimed devices by key',
    sql: `
      -- a revoked claim's certificate goes on its issuer's CRL, told apart by the certificate (NULL: older claims)
      ALTER TABLE claims ADD COLUMN certificate_pem TEXT;
      -- one key pair, one device: a claim request's key is looked up here
      CREATE INDEX claim_devices_key ON claim_devices (key_sha256);
    `,
  },
  {
    version: 6,
    name: 'when each device was last seen by the broker',
    sql: `
      -- the last connect or disconnect the running Gatehouse saw (written throttled and batched by
      -- provisioning/last-seen-recorder.ts); NULL: never seen
      ALTER TABLE devices ADD COLUMN last_seen_at TEXT;
    `,
  },
  {
    version: 7,
    name: 'active certificates by expiry (metrics: certificates expiring within 7 and 30 days)',
    sql: `
      -- countCertificatesExpiring runs on every /metrics scrape: a range over this instead of a table scan
      CREATE INDEX certificates_active_not_after ON certificates (not_after) WHERE status = 'active';
    `,
  },
  {
    version: 8,
    name: 'device labels; certificates by public key',
    sql: `
      -- key=value labels on a device (bounds and rules in provisioning/authority/labels.ts)
      CREATE TABLE device_labels (
        device_id  TEXT NOT NULL REFERENCES devices (id),
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (device_id, key)
      ) STRICT;
      -- a label filter (key=value) is a range over this, not a scan of every device
      CREATE INDEX device_labels_key_value ON device_labels (key, value, device_id);
      -- status and tier have a handful of values each: their filters walk devices in id order (keyset
      -- pages), and an index on them would draw the planner away from certificates_active_not_after
      -- SHA-256 of the certificate's public key (SPKI DER): one key pair, one device (GH_CSR_KEY_IN_USE);
      -- filled in for older certificates by the store when it applies this migration
      ALTER TABLE certificates ADD COLUMN key_sha256 TEXT;
      CREATE INDEX certificates_key ON certificates (key_sha256) WHERE key_sha256 IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: 'per-tier and per-device limits',
    sql: `
      -- a tier's values of the broker's per-device limits and of the AI budgets (JSON, validated on
      -- write); a tier without a row, or a value left out, takes the configured limits
      CREATE TABLE tier_limits (
        tier        TEXT PRIMARY KEY,
        limits      TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
      ) STRICT;
      -- one device's own values, over its tier's
      CREATE TABLE device_limits (
        device_id   TEXT PRIMARY KEY REFERENCES devices (id),
        limits      TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        updated_by  TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 10,
    name: 'API key rotation: the previous secret keeps working until a time',
    sql: `
      -- after a rotation the key's old secret (its SHA-256) works until previous_secret_until, then never again
      ALTER TABLE api_keys ADD COLUMN previous_secret_hash TEXT;
      ALTER TABLE api_keys ADD COLUMN previous_secret_until TEXT;
    `,
  },
  {
    version: 12,
    name: 'telemetry routes',
    sql: `
      -- a group's (or, group NULL, the fleet's) telemetry POSTed in signed batches to url; secret is the
      -- HMAC key of X-Gatehouse-Signature (needed in clear to sign; shown once, at creation)
      CREATE TABLE telemetry_routes (
        id          TEXT PRIMARY KEY,
        url         TEXT NOT NULL,
        grp         TEXT,
        secret      TEXT NOT NULL,
        batch_size  INTEGER NOT NULL,
        batch_ms    INTEGER NOT NULL,
        queue_max   INTEGER NOT NULL,
        redact      INTEGER NOT NULL,
        consent     INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 13,
    name: 'apps (MQTT identities that read devices within a scope) and their certificates',
    sql: `
      -- groups: a JSON array of settings groups, NULL for every group; classes: a JSON array of topic classes
      CREATE TABLE apps (
        name        TEXT PRIMARY KEY,
        groups      TEXT,
        classes     TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        created_at  TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        revoked_at  TEXT
      ) STRICT;
      -- every certificate issued to an app (CN app:<name>); revoked ones go on the CRLs
      CREATE TABLE app_certificates (
        serial       TEXT PRIMARY KEY,
        app_name     TEXT NOT NULL REFERENCES apps (name),
        fingerprint  TEXT NOT NULL UNIQUE,
        key_sha256   TEXT NOT NULL,
        not_after    TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        pem          TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
      ) STRICT;
      CREATE INDEX app_certificates_app ON app_certificates (app_name, created_at);
      CREATE INDEX app_certificates_key ON app_certificates (key_sha256);
    `,
  },
  {
    version: 14,
    name: 'dashboard sessions',
    sql: `
      -- a signed-in dashboard browser: only the SHA-256 of its cookie's id (the CSRF token is derived from the
      -- id, not stored); seq is the sign-in order (the oldest ends first past the bound)
      CREATE TABLE dashboard_sessions (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id_hash       TEXT NOT NULL UNIQUE,
        key_id        TEXT NOT NULL,
        key_name      TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        last_seen_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX dashboard_sessions_key ON dashboard_sessions (key_id);
    `,
  },
]

/** The schema version this code writes: the last migration's (numbers are unique and ascending, not necessarily contiguous while branches merge). */
export const SCHEMA_VERSION: number = migrations[migrations.length - 1]?.version ?? 0
