package sqlstore

import (
	"context"
	"github.com/berth-registry/berth/src/pkg/meta"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

// The shared suite (suite_test.go) runs against every database. Each factory returns the URL of a
// fresh, empty, isolated database.

func TestSQLite(t *testing.T) {
	t.Parallel()
	runSuite(t, newSQLiteDB)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	runSuite(t, newPostgresDB)
}

// newSQLiteDB returns a database file in a temp dir, alternating the two accepted URL forms.
func newSQLiteDB(t testing.TB) string {
	path := sqltest.SQLite(t)
	if strings.Contains(t.Name(), "Reopen") {
		return path // plain file path form
	}
	return "sqlite://" + path
}

// newPostgresDB returns a schema of its own on the test server (package sqltest).
func newPostgresDB(t testing.TB) string { return sqltest.Postgres(t) }

// TestSQLiteMemory covers the in-memory form: one connection serves reads, writes and transactions.
func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	require.NoError(t, err)
	defer s.Close()
	pid, err := s.CreateProject(ctx, &meta.Project{Name: "library"})
	require.NoError(t, err)
	a := manifest("m", 1)
	require.NoError(t, s.PutArtifact(ctx, pid, "library/a", a, "v1"))
	got, err := s.ResolveTag(ctx, "library/a", "v1")
	require.NoError(t, err)
	require.Equal(t, a.Digest, got.Digest)
}

// TestSQLiteHotPathPlans checks that the hot-path queries search indexes and scan no table.
func TestSQLiteHotPathPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t, newSQLiteDB(t)).(*store)
	for name, query := range map[string]string{
		"GetArtifact":         getArtifactSQL,
		"ResolveTag":          resolveTagSQL,
		"ListReferrers":       listReferrersSQL,
		"ListReferrersByType": listReferrersTypeSQL,
		"GetProjectByName":    getProjectByNameSQL,
		"GetProject":          getProjectSQL,
		"BlobLinked":          blobLinkedSQL,
	} {
		t.Run(name, func(t *testing.T) {
			type planRow struct {
				Detail string `orm:"column(detail)"`
			}
			var plan []planRow
			_, err := queryRows(ctx, st.r, &plan, "EXPLAIN QUERY PLAN "+query, "r", "d", "t")
			require.NoError(t, err)
			require.NotEmpty(t, plan)
			searches := 0
			for _, p := range plan {
				require.Falsef(t, strings.HasPrefix(p.Detail, "SCAN"), "table scan in plan %+v", plan)
				if strings.HasPrefix(p.Detail, "SEARCH") {
					searches++
				}
			}
			require.Positive(t, searches, "plan %+v", plan)
		})
	}
}

func TestParseDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		dialect *dialect
		target  string
		err     string
	}{
		{in: "postgres://u@h:5432/db?sslmode=disable", dialect: postgresDialect, target: "postgres://u@h:5432/db?sslmode=disable"},
		{in: "postgresql://h/db", dialect: postgresDialect, target: "postgresql://h/db"},
		{in: "  PostgreSQL://h/db ", dialect: postgresDialect, target: "PostgreSQL://h/db"},
		{in: "sqlite:///var/lib/berth/meta.db", dialect: sqliteDialect, target: "/var/lib/berth/meta.db"},
		{in: "sqlite://data/meta.db", dialect: sqliteDialect, target: "data/meta.db"},
		{in: "/var/lib/berth/meta.db", dialect: sqliteDialect, target: "/var/lib/berth/meta.db"},
		{in: "meta.db", dialect: sqliteDialect, target: "meta.db"},
		{in: ":memory:", dialect: sqliteDialect, target: ":memory:"},
		{in: "", err: "empty SQLite database path"},
		{in: "sqlite://", err: "empty SQLite database path"},
		{in: "mysql://root:hunter2@h/db", err: "unsupported database URL scheme"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, target, err := parseDatabaseURL(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Same(t, tc.dialect, d)
			require.Equal(t, tc.target, target)
		})
	}
}

func TestSQLiteDSN(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN("/tmp/a%b?c#d.db", "_txlock=immediate")
	require.True(t, strings.HasPrefix(dsn, "file:/tmp/a%25b%3Fc%23d.db?_pragma=busy_timeout(5000)&"), dsn)
	require.Contains(t, dsn, "_pragma=journal_mode(WAL)")
	require.Contains(t, dsn, "_pragma=foreign_keys(1)")
	require.True(t, strings.HasSuffix(dsn, "&_txlock=immediate"), dsn)
}

// TestSQLiteOddPath checks that a path with URI syntax characters opens the file it names.
func TestSQLiteOddPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a%20b?c#d.db")
	s := openStore(t, path)
	_, err := s.CreateProject(context.Background(), &meta.Project{Name: "p"})
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.NoError(t, err)
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:xxxxx@h/db", redact("postgres://u:secret@h/db"))
	require.Equal(t, "postgres://u@h/db", redact("postgres://u@h/db"))
	require.Equal(t, "postgres://h/db", redact("postgres://h/db"))
	require.Equal(t, "/a/b", redact("/a/b"))
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		url  string
	}{
		{"unsupported scheme", ctx, "mysql://h/db"},
		{"missing directory", ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "meta.db")},
		{"postgres refused", ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"},
		{"cancelled context", cancelled, "sqlite://" + sqltest.SQLite(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.ctx, tc.url)
			require.Error(t, err)
			require.Nil(t, s)
		})
	}
}

// TestPostgresKeyCollation checks that names and digests compare bytewise on PostgreSQL whatever the
// database's collation (the test server's C.UTF-8 would hide a missing COLLATE "C" in the ordering tests).
func TestPostgresKeyCollation(t *testing.T) {
	t.Parallel()
	s := openStore(t, newPostgresDB(t)).(*store)
	type col struct {
		Table     string `orm:"column(table_name)"`
		Column    string `orm:"column(column_name)"`
		Collation string `orm:"column(collation_name)"`
	}
	var cols []col
	_, err := queryRows(context.Background(), s.r, &cols,
		`SELECT table_name, column_name, collation_name FROM information_schema.columns
		 WHERE table_schema = current_schema() AND column_name IN ('name', 'digest', 'subject_digest')
		 ORDER BY table_name, column_name`)
	require.NoError(t, err)
	// At least: name of project, registry, repository, tag, schema_migrations; digest, subject_digest of
	// artifact; digest of blob_link. Later tables (robot.name, ...) are checked as they come.
	seen := map[string]bool{}
	for _, c := range cols {
		seen[c.Table+"."+c.Column] = true
	}
	for _, want := range []string{"project.name", "registry.name", "repository.name", "tag.name",
		"schema_migrations.name", "artifact.digest", "artifact.subject_digest", "blob_link.digest",
		"blob_pin.digest", "blob_tombstone.digest"} {
		require.True(t, seen[want], "column %s", want)
	}
	for _, c := range cols {
		if c.Table == "schema_migrations" {
			continue
		}
		require.Equal(t, "C", c.Collation, "%s.%s", c.Table, c.Column)
	}
}
