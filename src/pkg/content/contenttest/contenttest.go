// Package contenttest builds the real stores that content tests run over: a storage.FS and a SQLite
// meta store side by side in one temp dir. It is for tests only.
package contenttest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// Stores returns a storage.FS rooted at <dir>/storage and a SQLite meta store at <dir>/meta.db, in a
// fresh temp dir of tb; the meta store is closed when the test ends. It fails tb on any error.
func Stores(tb testing.TB) (*storage.FS, meta.Store) {
	tb.Helper()
	dir := tb.TempDir()
	return StoresOn(tb, dir, filepath.Join(dir, "meta.db"))
}

// StoresOn returns a storage.FS rooted at <dir>/storage and the meta store at databaseURL (a SQLite
// path or a PostgreSQL URL); the meta store is closed when the test ends. It fails tb on any error.
func StoresOn(tb testing.TB, dir, databaseURL string) (*storage.FS, meta.Store) {
	tb.Helper()
	fs, err := storage.NewFS(filepath.Join(dir, "storage"))
	require.NoError(tb, err)
	ms, err := sqlstore.Open(context.Background(), databaseURL)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = ms.Close() })
	return fs, ms
}

// CreateProjects creates each project in ms and fails tb on any error.
func CreateProjects(tb testing.TB, ms meta.ProjectStore, projects ...*meta.Project) {
	tb.Helper()
	for _, p := range projects {
		_, err := ms.CreateProject(context.Background(), p)
		require.NoError(tb, err)
	}
}
