// Package sqlstore implements meta.Store with beego's ORM (raw SQL, no registered models) on SQLite
// through the pure-Go modernc driver (the embedded default) or PostgreSQL through lib/pq. Open applies
// the versioned migrations before it returns.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/berth-registry/berth/src/pkg/meta"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beego/beego/v2/client/orm"
	_ "github.com/lib/pq"  // database/sql driver "postgres"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Connection pool settings. SQLite writes go through one connection (writes are serialised in the
// process, so they never meet SQLITE_BUSY from each other) while reads use a pool of their own: with WAL,
// readers do not block the writer nor each other. busy_timeout covers other processes on the same file.
const (
	sqliteBusyTimeoutMS = 5000
	sqliteMaxReaders    = 8
	pgMaxIdleConns      = 8
	connMaxIdleTime     = 5 * time.Minute
)

var (
	// registerOnce registers modernc's driver name with beego. beego's driver table is a plain map, so
	// it must be written once, before any alias is added.
	registerOnce sync.Once
	registerErr  error
	// aliasSeq makes every beego alias unique in the process.
	aliasSeq atomic.Uint64
)

// store implements Store with beego's ORM (github.com/beego/beego/v2/client/orm v2.3.8) used as a
// connection registry, transaction runner and placeholder rewriter over hand-written SQL.
//
// Why raw SQL and no registered models: beego's model registry is process-global, can be filled only
// before the first NewOrm (later RegisterModel panics), and its query builder has no portable upsert.
// Raw SQL with `?` placeholders runs unchanged on both databases (beego rewrites `?` to $n for
// PostgreSQL — every `?`, so none may appear inside SQL literals), upserts are ON CONFLICT on both, new
// IDs come from RETURNING (lib/pq has no LastInsertId), and each hot-path read is one explicit indexed
// query.
//
// What beego's Raw gets wrong, and how this package copes (all verified in the v2.3.8 source):
//   - RawWithCtx ignores its context: ctx is checked before each statement, and multi-statement writes
//     (PutArtifact, LinkBlob, migrations) run in transactions begun with ctx, which cancelling rolls
//     back. A statement that has started runs to its end.
//   - QueryRow drops errors met while iterating (rows.Err): only QueryRows is used.
//   - time.Time arguments are formatted to whole seconds in the server's zone: times are stored as
//     BIGINT microseconds since the epoch instead.
//   - DoTx logs and drops commit errors: transactions are driven by withTx.
//
// Every Open registers its pools under fresh aliases (beego cannot forget an alias, so a closed store
// leaves a small entry behind) and the "sqlite" driver name once, so stores on both databases can live
// side by side in one process.
type store struct {
	d *dialect
	// r runs reads outside transactions; w runs writes and transactions. On PostgreSQL both are the same.
	r, w orm.Ormer
	// rdb is the pool behind r, on which the hot-path reads are prepared (prepared.go).
	rdb   *sql.DB
	stmts preparedReads
	// dbs are the pools behind r and w, closed by Close.
	dbs       []*sql.DB
	closeOnce sync.Once
	closeErr  error
}

var _ meta.Store = (*store)(nil)

// Open connects to the database named by databaseURL, applies pending migrations and returns the Store.
//
// Accepted forms:
//   - postgres://... or postgresql://...: PostgreSQL through lib/pq; the URL is passed to lib/pq
//     unchanged, so its parameters (sslmode, connect_timeout, search_path and other run-time settings)
//     apply.
//   - sqlite://<path> or a plain file path: SQLite through modernc.org/sqlite, in WAL mode with foreign
//     keys on; the file is created when missing (its directory must exist). The path is taken verbatim
//     (no query parameters). ":memory:" gives a private in-memory database on one connection, for tests.
//
// Open fails when the database holds a schema newer than this binary knows.
func Open(ctx context.Context, databaseURL string) (meta.Store, error) {
	registerOnce.Do(func() { registerErr = orm.RegisterDriver(sqliteDialect.driver, orm.DRSqlite) })
	if registerErr != nil {
		return nil, fmt.Errorf("meta: register sqlite driver with beego: %w", registerErr)
	}
	d, target, err := parseDatabaseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	s := &store{d: d}
	if err := s.connect(ctx, target); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("meta: migrate: %w", err)
	}
	if err := s.stmts.prepare(ctx, s.d, s.rdb); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// parseDatabaseURL picks the dialect and returns the PostgreSQL URL or the SQLite file path.
func parseDatabaseURL(u string) (*dialect, string, error) {
	u = strings.TrimSpace(u)
	lower := strings.ToLower(u)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return postgresDialect, u, nil
	case strings.HasPrefix(lower, "sqlite://"):
		u = u[len("sqlite://"):]
	case strings.Contains(u, "://"):
		return nil, "", fmt.Errorf("meta: unsupported database URL scheme in %q (want postgres://, postgresql://, sqlite:// or a file path)", redact(u))
	}
	if u == "" {
		return nil, "", errors.New("meta: empty SQLite database path")
	}
	return sqliteDialect, u, nil
}

// redact hides a password in a URL for error messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return u
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return u
}

// connect opens the pools and registers them with beego under aliases of their own.
func (s *store) connect(ctx context.Context, target string) error {
	switch {
	case s.d == postgresDialect:
		return s.connectOne(ctx, "pg", target, func(db *sql.DB) {
			db.SetMaxIdleConns(pgMaxIdleConns)
			db.SetConnMaxIdleTime(connMaxIdleTime)
		})
	case target == ":memory:":
		// Each connection to ":memory:" is a database of its own: keep exactly one, forever.
		return s.connectOne(ctx, "mem", sqliteDSN(target, "_txlock=immediate"), oneConn)
	}
	if err := createPrivate(target); err != nil {
		return err
	}
	w, err := s.addAlias(ctx, "w", sqliteDSN(target, "_txlock=immediate"), oneConn)
	if err != nil {
		return err
	}
	// The writer connects first, so the file exists and is in WAL mode before readers open it.
	r, err := s.addAlias(ctx, "r", sqliteDSN(target, "_pragma=query_only(1)"), func(db *sql.DB) {
		db.SetMaxOpenConns(sqliteMaxReaders)
		db.SetMaxIdleConns(sqliteMaxReaders)
		db.SetConnMaxIdleTime(connMaxIdleTime)
	})
	if err != nil {
		return err
	}
	s.r, s.w, s.rdb = r, w, s.dbs[len(s.dbs)-1]
	return nil
}

// connectOne opens one pool that serves both reads and writes.
func (s *store) connectOne(ctx context.Context, role, dsn string, tune func(*sql.DB)) error {
	db, err := s.addAlias(ctx, role, dsn, tune)
	if err != nil {
		return err
	}
	s.r, s.w, s.rdb = db, db, s.dbs[len(s.dbs)-1]
	return nil
}

// oneConn keeps a pool at exactly one connection, never closed for idleness.
func oneConn(db *sql.DB) {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
}

// createPrivate creates the SQLite file at path with mode 0600 when it does not exist yet, before SQLite
// would create it with 0644. SQLite gives the -wal and -shm files it creates the mode of the database
// file, so they are 0600 too. An existing file keeps its mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("meta: create %s: %w", path, err)
	}
	return f.Close()
}

// sqliteDSN builds a modernc.org/sqlite URI DSN for path. Busy timeout comes first so that the other
// pragmas wait for locks too.
func sqliteDSN(path, extra string) string {
	// The "file:" URI form percent-decodes the path; escape what would be read as URI syntax.
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&%s",
		esc, sqliteBusyTimeoutMS, extra)
}

// addAlias opens a pool, checks it answers, and registers it with beego under a fresh alias.
func (s *store) addAlias(ctx context.Context, role, dsn string, tune func(*sql.DB)) (orm.Ormer, error) {
	db, err := sql.Open(s.d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("meta: open %s database: %w", s.d.name, err)
	}
	tune(db)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("meta: connect to %s database: %w", s.d.name, err)
	}
	// beego keeps aliases for the life of the process and offers no way to remove one; a closed
	// store leaves a small entry behind.
	alias := fmt.Sprintf("berth-meta-%d-%s", aliasSeq.Add(1), role)
	if err := orm.AddAliasWthDB(alias, s.d.driver, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("meta: register %s database with beego: %w", s.d.name, err)
	}
	s.dbs = append(s.dbs, db)
	return orm.NewOrmUsingDB(alias), nil
}

// Ping checks that every pool answers.
func (s *store) Ping(ctx context.Context) error {
	for _, db := range s.dbs {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("meta: ping: %w", err)
		}
	}
	return nil
}

// Close closes the pools. It is safe to call more than once; later calls return the first result.
func (s *store) Close() error {
	s.closeOnce.Do(func() {
		errs := []error{s.stmts.close()}
		for _, db := range s.dbs {
			errs = append(errs, db.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
