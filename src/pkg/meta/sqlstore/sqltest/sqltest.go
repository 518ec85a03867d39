// Package sqltest gives tests fresh, isolated databases for package sqlstore: a SQLite file in a temp
// dir, or a schema of its own on the PostgreSQL server at BERTH_TEST_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), dropped at cleanup. An unreachable
// PostgreSQL fails the test unless BERTH_TEST_SKIP_POSTGRES=1.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/lib/pq" // database/sql driver "postgres"
)

// DefaultPostgresURL is the server used when BERTH_TEST_POSTGRES_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SQLite returns the path of a database file in a temp dir of t.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "meta.db")
}

// Postgres creates a schema of its own, dropped at cleanup, and returns a URL whose search_path points
// at it (lib/pq passes unknown URL parameters as run-time settings). Stores opened on the URL must be
// closed before the cleanup registered here runs, i.e. their cleanup registered after this call.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("BERTH_TEST_POSTGRES_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("BERTH_TEST_POSTGRES_URL: %v", err)
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("BERTH_TEST_SKIP_POSTGRES") == "1" {
			t.Skipf("PostgreSQL at %s unreachable (BERTH_TEST_SKIP_POSTGRES=1): %v", u.Redacted(), err)
		}
		t.Fatalf("PostgreSQL at %s unreachable (set BERTH_TEST_SKIP_POSTGRES=1 to skip): %v", u.Redacted(), err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "berth_t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	// Registered before any store's Close, so it runs after them.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
