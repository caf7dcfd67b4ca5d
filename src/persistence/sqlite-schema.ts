/**
 * SQLite schema of tern.db as an ordered list of migrations. MIGRATIONS[i]
 * takes a database from `PRAGMA user_version` i to i + 1; a new database runs
 * them all. Never edit a released migration: append a new one.
 *
 * Layout (latest version):
 * - meta(key, value): `last_message_id` (high-water mark of message ids, kept
 *   even after those messages are collected) and `clean_shutdown` (1 after
 *   close(); an unclean start runs PRAGMA quick_check).
 * - sessions: one row per session; `expires_at` = disconnected_at +
 *   expiry_interval * 1000 (NULL while connected or never expiring), indexed
 *   for purgeExpired; `username` (v3) of the last connection, NULL when
 *   anonymous.
 * - subscriptions / outbound / inbound: keyed by client id first, deleted with
 *   their session by ON DELETE CASCADE (foreign_keys=ON).
 * - messages: each stored once; `refs` counts the outbound rows and retained
 *   slots referencing it, maintained by triggers (so cascades and purges keep it
 *   right); rows with refs = 0 are found through the partial index
 *   messages_unreferenced and deleted at the end of each commit.
 * - retained: keyed by the topic's UTF-8 bytes as a BLOB, so the topics under a
 *   literal prefix p are exactly the range [p, p || x'FF') (0xFF never occurs in
 *   UTF-8) and a wildcard lookup range-scans the primary key.
 *   retained_stats (v2) keeps count and payload bytes, maintained by triggers.
 */

/** v1: the initial schema. */
const V1 = `
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
  client_id TEXT PRIMARY KEY,
  protocol_level INTEGER NOT NULL,
  expiry_interval INTEGER NOT NULL,
  disconnected_at INTEGER,
  created_at INTEGER NOT NULL,
  will_topic TEXT,
  will_payload BLOB,
  will_qos INTEGER,
  will_retain INTEGER,
  will_properties TEXT,
  will_delay INTEGER
) WITHOUT ROWID;

CREATE TABLE subscriptions (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE,
  filter TEXT NOT NULL,
  qos INTEGER NOT NULL,
  no_local INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling INTEGER NOT NULL,
  subscription_id INTEGER,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  properties TEXT,
  expires_at INTEGER,
  created_at INTEGER NOT NULL,
  refs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_unreferenced ON messages(id) WHERE refs = 0;
CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE outbound (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  message_id INTEGER NOT NULL REFERENCES messages(id),
  qos INTEGER NOT NULL,
  packet_id INTEGER,
  state INTEGER NOT NULL,
  subscription_ids TEXT,
  retain INTEGER,
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE INDEX outbound_message ON outbound(message_id);

CREATE TABLE inbound (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;

CREATE TABLE retained (
  topic BLOB PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id),
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX retained_message ON retained(message_id);

CREATE TRIGGER outbound_ref AFTER INSERT ON outbound BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
END;
CREATE TRIGGER outbound_unref AFTER DELETE ON outbound BEGIN
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id;
END;
CREATE TRIGGER outbound_reref AFTER UPDATE OF message_id ON outbound
WHEN OLD.message_id <> NEW.message_id BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id;
END;
CREATE TRIGGER retained_ref AFTER INSERT ON retained BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
END;
CREATE TRIGGER retained_unref AFTER DELETE ON retained BEGIN
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id;
END;
CREATE TRIGGER retained_reref AFTER UPDATE OF message_id ON retained
WHEN OLD.message_id <> NEW.message_id BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id;
END;
`;

/**
 * v2: O(1) retained stats (v1 counted with a scan) and an index on session
 * expiry (v1 scanned every session on purge). Backfills both.
 */
const V2 = `
ALTER TABLE sessions ADD COLUMN expires_at INTEGER;
UPDATE sessions SET expires_at = disconnected_at + expiry_interval * 1000
  WHERE disconnected_at IS NOT NULL AND expiry_interval <> 4294967295;
CREATE INDEX sessions_expiry ON sessions(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE retained_stats (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  count INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
INSERT INTO retained_stats (id, count, bytes) SELECT 1, count(*), coalesce(sum(bytes), 0) FROM retained;

CREATE TRIGGER retained_stats_insert AFTER INSERT ON retained BEGIN
  UPDATE retained_stats SET count = count + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER retained_stats_delete AFTER DELETE ON retained BEGIN
  UPDATE retained_stats SET count = count - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
CREATE TRIGGER retained_stats_update AFTER UPDATE OF bytes ON retained BEGIN
  UPDATE retained_stats SET bytes = bytes + NEW.bytes - OLD.bytes WHERE id = 1;
END;
`;

/**
 * v3: the username of a session's last connection, so a restored session is
 * checked against the ACL as its owner until the client reconnects. Sessions
 * stored before v3 have none (restored as anonymous).
 */
const V3 = `
ALTER TABLE sessions ADD COLUMN username TEXT;
`;

export const MIGRATIONS: readonly string[] = [V1, V2, V3];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
