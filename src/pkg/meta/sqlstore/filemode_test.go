package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// TestSQLiteFilesArePrivate: the database, its WAL and its shared-memory file are created 0600 (they hold
// the sealed upstream credentials and every project), whatever the umask lets through.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o002) // a permissive umask: SQLite alone would create 0664 files
	t.Cleanup(func() { syscall.Umask(old) })
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openStore(t, path)
	_, err := s.CreateProject(context.Background(), &meta.Project{Name: "p"}) // the WAL has content
	require.NoError(t, err)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
}

// TestSQLiteKeepsTheModeOfAnExistingFile: an operator's choice for an existing database stands.
func TestSQLiteKeepsTheModeOfAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	require.NoError(t, os.WriteFile(path, nil, 0o640))
	require.NoError(t, os.Chmod(path, 0o640))
	openStore(t, path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}
