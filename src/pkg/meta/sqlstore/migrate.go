package sqlstore

import (
	"context"
	"fmt"

	"github.com/beego/beego/v2/client/orm"
)

// migration is one schema version. up returns its statements for a dialect; they run in one transaction
// together with the schema_migrations row that records the version. Versions only grow: never edit a
// released migration, append a new one.
//
// In DDL, {{ID}} is an auto-increment primary key and {{KEY}} a text column compared bytewise (see
// dialect.ddl). Times are BIGINT microseconds since the Unix epoch (see sql.go).
type migration struct {
	version int64
	name    string
	up      func(d *dialect) []string
}

// ddl returns a migration body that is the same on both databases up to the type tokens.
func ddl(stmts ...string) func(d *dialect) []string {
	return func(d *dialect) []string {
		out := make([]string, len(stmts))
		for i, s := range stmts {
			out[i] = d.ddl.Replace(s)
		}
		return out
	}
}

var migrations = []migration{
	{version: 1, name: "initial schema", up: ddl(
		`CREATE TABLE registry (
			id              {{ID}},
			name            {{KEY}} NOT NULL UNIQUE,
			type            TEXT NOT NULL DEFAULT '',
			url             TEXT NOT NULL DEFAULT '',
			description     TEXT NOT NULL DEFAULT '',
			insecure        BOOLEAN NOT NULL DEFAULT FALSE,
			ca_certificate  TEXT NOT NULL DEFAULT '',
			credential_type TEXT NOT NULL DEFAULT '',
			access_key      TEXT NOT NULL DEFAULT '',
			access_secret   TEXT NOT NULL DEFAULT '',
			creation_time   BIGINT NOT NULL,
			update_time     BIGINT NOT NULL
		)`,
		// registry_id is NULL for a local project. RESTRICT: a registry in use cannot go.
		`CREATE TABLE project (
			id            {{ID}},
			name          {{KEY}} NOT NULL UNIQUE,
			registry_id   BIGINT REFERENCES registry (id) ON DELETE RESTRICT,
			metadata      TEXT NOT NULL DEFAULT '{}',
			storage_limit BIGINT NOT NULL DEFAULT -1,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE INDEX project_registry_id_idx ON project (registry_id)`,
		// RESTRICT: a project holding repositories cannot go (DeleteProject), even when a push races it.
		`CREATE TABLE repository (
			id            {{ID}},
			project_id    BIGINT NOT NULL REFERENCES project (id) ON DELETE RESTRICT,
			name          {{KEY}} NOT NULL UNIQUE,
			creation_time BIGINT NOT NULL
		)`,
		`CREATE INDEX repository_project_id_idx ON repository (project_id)`,
		// subject_digest is NULL when the manifest has no subject; the partial index is the referrer
		// index. pull_time is NULL until the first pull.
		`CREATE TABLE artifact (
			id             {{ID}},
			repository_id  BIGINT NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
			digest         {{KEY}} NOT NULL,
			media_type     TEXT NOT NULL,
			artifact_type  TEXT NOT NULL DEFAULT '',
			size           BIGINT NOT NULL,
			annotations    TEXT NOT NULL DEFAULT '{}',
			subject_digest {{KEY}},
			push_time      BIGINT NOT NULL,
			pull_time      BIGINT,
			UNIQUE (repository_id, digest)
		)`,
		`CREATE INDEX artifact_subject_idx ON artifact (repository_id, subject_digest) WHERE subject_digest IS NOT NULL`,
		// Tags die with their artifact and their repository.
		`CREATE TABLE tag (
			id            {{ID}},
			repository_id BIGINT NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
			name          {{KEY}} NOT NULL,
			artifact_id   BIGINT NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
			push_time     BIGINT NOT NULL,
			UNIQUE (repository_id, name)
		)`,
		`CREATE INDEX tag_artifact_id_idx ON tag (artifact_id)`,
		`CREATE TABLE blob_link (
			repository_id BIGINT NOT NULL REFERENCES repository (id) ON DELETE CASCADE,
			digest        {{KEY}} NOT NULL,
			size          BIGINT NOT NULL,
			creation_time BIGINT NOT NULL,
			PRIMARY KEY (repository_id, digest)
		)`,
		// For garbage collection: is a blob linked anywhere?
		`CREATE INDEX blob_link_digest_idx ON blob_link (digest)`,
	)},
	// How a manifest first came into its repository: 'pushed' (a client PUT) or 'pulled' (through a
	// proxy-cache project). '' marks rows from before this version: unknown, and read as pulled where it
	// matters (the Proxy Referrer API never answers an empty list for them while the upstream is down).
	{version: 2, name: "artifact origin", up: ddl(
		`ALTER TABLE artifact ADD COLUMN origin TEXT NOT NULL DEFAULT ''`,
	)},
	// Retention: policies (Harbor's JSON document, scoped to a project), their executions and per
	// repository tasks; repository pull counts. One execution of a policy runs at a time across nodes
	// (the partial unique index on the running ones), and a scheduled slot runs once (slot is NULL for
	// manual runs).
	{version: 3, name: "retention and pull counts", up: ddl(
		`ALTER TABLE repository ADD COLUMN pull_count BIGINT NOT NULL DEFAULT 0`,
		`CREATE TABLE retention_policy (
			id            {{ID}},
			project_id    BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
			policy        TEXT NOT NULL,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE INDEX retention_policy_project_idx ON retention_policy (project_id)`,
		`CREATE TABLE retention_execution (
			id           {{ID}},
			policy_id    BIGINT NOT NULL REFERENCES retention_policy (id) ON DELETE CASCADE,
			status       TEXT NOT NULL,
			trigger_kind TEXT NOT NULL,
			dry_run      BOOLEAN NOT NULL DEFAULT FALSE,
			slot         BIGINT,
			start_time   BIGINT NOT NULL,
			end_time     BIGINT,
			heartbeat    BIGINT NOT NULL
		)`,
		`CREATE INDEX retention_execution_policy_idx ON retention_execution (policy_id, id)`,
		`CREATE UNIQUE INDEX retention_execution_running_idx ON retention_execution (policy_id)
			WHERE status IN ('Running', 'Stopping')`,
		`CREATE UNIQUE INDEX retention_execution_slot_idx ON retention_execution (policy_id, slot)
			WHERE slot IS NOT NULL`,
		`CREATE TABLE retention_task (
			id           {{ID}},
			execution_id BIGINT NOT NULL REFERENCES retention_execution (id) ON DELETE CASCADE,
			repository   TEXT NOT NULL,
			status       TEXT NOT NULL,
			total        BIGINT NOT NULL DEFAULT 0,
			retained     BIGINT NOT NULL DEFAULT 0,
			log          TEXT NOT NULL DEFAULT '',
			start_time   BIGINT NOT NULL,
			end_time     BIGINT
		)`,
		`CREATE INDEX retention_task_execution_idx ON retention_task (execution_id, id)`,
	)},
	// Eviction and garbage collection delete the bytes of a manifest only when no repository records its
	// digest any more (CondemnBlob): without this index that question scans every artifact.
	{version: 4, name: "artifact digest index", up: ddl(
		`CREATE INDEX artifact_digest_idx ON artifact (digest)`,
	)},
	// Online garbage collection (docs/gc.md). blob_pin: digests a writer is about to reference, until
	// expires. blob_tombstone: digests whose links are gone and whose bytes are being removed. The
	// history, the schedule (one row, id 1) and the lease that keeps one collector running (id 1).
	{version: 5, name: "garbage collection", up: ddl(
		`CREATE TABLE blob_pin (
			digest  {{KEY}} NOT NULL PRIMARY KEY,
			expires BIGINT NOT NULL
		)`,
		`CREATE TABLE blob_tombstone (
			digest        {{KEY}} NOT NULL PRIMARY KEY,
			creation_time BIGINT NOT NULL
		)`,
		`CREATE TABLE gc_execution (
			id            {{ID}},
			kind          TEXT NOT NULL,
			status        TEXT NOT NULL,
			parameters    TEXT NOT NULL DEFAULT '{}',
			log           TEXT NOT NULL DEFAULT '',
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE TABLE gc_schedule (
			id            BIGINT NOT NULL PRIMARY KEY,
			type          TEXT NOT NULL,
			cron          TEXT NOT NULL DEFAULT '',
			parameters    TEXT NOT NULL DEFAULT '{}',
			last_fire     BIGINT NOT NULL DEFAULT 0,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE TABLE gc_lease (
			id      BIGINT NOT NULL PRIMARY KEY,
			owner   TEXT NOT NULL,
			expires BIGINT NOT NULL
		)`,
		// The collector asks whether any repository holds a manifest of a digest: artifact_digest_idx
		// of version 4 answers it.
	)},
	// Access control: local accounts, project members with Harbor's role IDs, and the audit log. An
	// account's memberships die with it and with their project; audit entries outlive both (they name
	// the user and resource as text).
	{version: 6, name: "users, members, audit log", up: ddl(
		`CREATE TABLE account (
			id            {{ID}},
			username      {{KEY}} NOT NULL UNIQUE,
			email         TEXT NOT NULL DEFAULT '',
			realname      TEXT NOT NULL DEFAULT '',
			comment       TEXT NOT NULL DEFAULT '',
			password_hash TEXT NOT NULL,
			sysadmin      BOOLEAN NOT NULL DEFAULT FALSE,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE TABLE project_member (
			id            {{ID}},
			project_id    BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
			user_id       BIGINT NOT NULL REFERENCES account (id) ON DELETE CASCADE,
			role          INTEGER NOT NULL,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL,
			UNIQUE (project_id, user_id)
		)`,
		`CREATE INDEX project_member_user_id_idx ON project_member (user_id)`,
		`CREATE TABLE audit_log (
			id            {{ID}},
			project_id    BIGINT NOT NULL DEFAULT 0,
			resource      TEXT NOT NULL,
			resource_type TEXT NOT NULL,
			operation     TEXT NOT NULL,
			username      TEXT NOT NULL,
			op_time       BIGINT NOT NULL
		)`,
		`CREATE INDEX audit_log_op_time_idx ON audit_log (op_time)`,
	)},
	// Robot accounts. name is unprefixed; permissions is JSON; expires_at is 0 for robots that never
	// expire. A project-level robot goes with its project.
	{version: 7, name: "robot accounts", up: ddl(
		`CREATE TABLE robot (
			id            {{ID}},
			name          {{KEY}} NOT NULL UNIQUE,
			description   TEXT NOT NULL DEFAULT '',
			level         TEXT NOT NULL,
			project_id    BIGINT REFERENCES project (id) ON DELETE CASCADE,
			permissions   TEXT NOT NULL DEFAULT '[]',
			secret_hash   TEXT NOT NULL,
			duration      BIGINT NOT NULL,
			expires_at    BIGINT NOT NULL DEFAULT 0,
			disabled      BOOLEAN NOT NULL DEFAULT FALSE,
			creation_time BIGINT NOT NULL,
			update_time   BIGINT NOT NULL
		)`,
		`CREATE INDEX robot_project_id_idx ON robot (project_id)`,
	)},
	// Web console sessions (meta.SessionStore), keyed by a hash of the session ID; expired rows are
	// removed by the next login.
	{version: 8, name: "console sessions", up: ddl(
		`CREATE TABLE console_session (
			session_key {{KEY}} NOT NULL PRIMARY KEY,
			user_name   TEXT NOT NULL,
			user_id     BIGINT NOT NULL DEFAULT 0,
			admin       BOOLEAN NOT NULL DEFAULT FALSE,
			csrf        TEXT NOT NULL,
			expires     BIGINT NOT NULL
		)`,
		`CREATE INDEX console_session_expires_idx ON console_session (expires)`,
	)},
}

// schemaVersion is the newest version this binary knows.
func schemaVersion() int64 { return migrations[len(migrations)-1].version }

// migrate creates schema_migrations if needed and applies the pending migrations in order, each in a
// transaction of its own. Concurrent migrators (several processes starting at once) are serialised:
// PostgreSQL by an advisory transaction lock, SQLite by BEGIN IMMEDIATE; each re-reads the applied
// versions under the lock, so a version is applied once.
func (s *store) migrate(ctx context.Context) error {
	if err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := exec(ctx, tx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version      BIGINT NOT NULL PRIMARY KEY,
			name         TEXT NOT NULL,
			applied_time BIGINT NOT NULL
		)`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	// Fast path: nothing to do on an up-to-date database.
	applied, err := s.appliedVersions(ctx, s.w)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		if err := s.withTx(ctx, func(tx orm.TxOrmer) error { return s.apply(ctx, tx, m) }); err != nil {
			return fmt.Errorf("version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// appliedVersions returns the recorded versions and refuses a database newer than this binary.
func (s *store) appliedVersions(ctx context.Context, q querier) (map[int64]bool, error) {
	var versions []int64
	if _, err := queryRows(ctx, q, &versions, `SELECT version FROM schema_migrations`); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := make(map[int64]bool, len(versions))
	for _, v := range versions {
		if v > schemaVersion() {
			return nil, fmt.Errorf("database schema version %d is newer than this binary's %d", v, schemaVersion())
		}
		applied[v] = true
	}
	return applied, nil
}

func (s *store) lockMigrations(ctx context.Context, tx orm.TxOrmer) error {
	if s.d.migrationLock == "" {
		return nil
	}
	var locked []string // pg_advisory_xact_lock returns void
	_, err := queryRows(ctx, tx, &locked, s.d.migrationLock)
	return err
}

// apply applies m unless another migrator did so while this one waited for the lock.
func (s *store) apply(ctx context.Context, tx orm.TxOrmer, m migration) error {
	if err := s.lockMigrations(ctx, tx); err != nil {
		return err
	}
	applied, err := s.appliedVersions(ctx, tx)
	if err != nil || applied[m.version] {
		return err
	}
	for _, stmt := range m.up(s.d) {
		if _, err := exec(ctx, tx, stmt); err != nil {
			return fmt.Errorf("%w; statement: %s", err, stmt)
		}
	}
	_, err = exec(ctx, tx, `INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)`,
		m.version, m.name, toDBTime(now()))
	return err
}
