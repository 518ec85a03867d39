package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// testContextCancelled checks that a cancelled context stops reads, writes and transactions.
func testContextCancelled(t *testing.T, newDB dbFactory) {
	s := newStore(t, newDB)
	pid := project(t, s, "library")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := &meta.Artifact{Digest: dg("a"), MediaType: mtManifest}
	for name, err := range map[string]error{
		"read":  func() error { _, err := s.GetProject(ctx, pid); return err }(),
		"write": func() error { _, err := s.CreateProject(ctx, &meta.Project{Name: "x"}); return err }(),
		"tx":    s.PutArtifact(ctx, pid, "library/app", a, "v1"),
		"ping":  s.Ping(ctx),
	} {
		require.ErrorIs(t, err, context.Canceled, name)
	}
	_, err := s.GetProjectByName(t.Context(), "x")
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.ListTags(t.Context(), "library/app", meta.Page{})
	require.ErrorIs(t, err, meta.ErrNotFound)
}

func testPingClose(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s, err := Open(ctx, newDB(t))
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	require.Error(t, s.Ping(ctx))
	_, err = s.GetProject(ctx, 1)
	require.Error(t, err)
	require.NotErrorIs(t, err, meta.ErrNotFound)
}

// testReopen checks that data and the migration record survive a reopen, that migrations are not
// re-applied, and that a database from a newer binary is refused.
func testReopen(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	url := newDB(t)
	s1, err := Open(ctx, url)
	require.NoError(t, err)
	pid, err := s1.CreateProject(ctx, &meta.Project{Name: "library"})
	require.NoError(t, err)
	a := manifest("a", 7)
	require.NoError(t, s1.PutArtifact(ctx, pid, "library/app", a, "v1"))
	require.NoError(t, s1.Close())

	for i := range 2 {
		s := openStore(t, url)
		got, err := s.ResolveTag(ctx, "library/app", "v1")
		require.NoError(t, err, "reopen %d", i)
		require.Equal(t, a, got)
		require.Equal(t, int64(len(migrations)), countRows(t, s, "schema_migrations"))
		var versions []int64
		_, err = queryRows(ctx, s.(*store).r, &versions, `SELECT version FROM schema_migrations ORDER BY version`)
		require.NoError(t, err)
		require.Equal(t, schemaVersion(), versions[len(versions)-1])
		require.NoError(t, s.Close())
	}

	s := openStore(t, url)
	_, err = exec(ctx, s.(*store).w, `INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)`,
		schemaVersion()+1, "from the future", toDBTime(now()))
	require.NoError(t, err)
	_, err = Open(ctx, url)
	require.ErrorContains(t, err, "newer than this binary")
}

// testConcurrentOpen opens one fresh database from several goroutines at once (replicas starting
// together): every Open succeeds and each migration is recorded once.
func testConcurrentOpen(t *testing.T, newDB dbFactory) {
	url := newDB(t)
	const n = 4
	stores := make([]meta.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), url) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	require.Equal(t, int64(len(migrations)), countRows(t, stores[0], "schema_migrations"))
}

// testConcurrentPush pushes from 20 goroutines into one repository that does not exist yet: distinct
// digests with distinct tags, and the same digest with the same tag.
func testConcurrentPush(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	const n = 20
	const repo = "library/hot"
	shared := dg("shared")
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a := &meta.Artifact{Digest: dg(fmt.Sprint("own", i)), MediaType: mtManifest, Size: int64(i), Subject: shared}
			errs <- s.PutArtifact(ctx, pid, repo, a, fmt.Sprintf("t%02d", i))
		})
		wg.Go(func() {
			errs <- errors.Join(
				s.PutArtifact(ctx, pid, repo, &meta.Artifact{Digest: shared, MediaType: mtManifest, Size: 1}, "latest"),
				s.LinkBlob(ctx, pid, repo, dg("layer"), 10),
			)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	tags, err := s.ListTags(ctx, repo, meta.Page{})
	require.NoError(t, err)
	require.Len(t, tags, n+1)
	require.Equal(t, int64(n+1), countRows(t, s, "artifact"))
	require.Equal(t, int64(1), countRows(t, s, "repository"))
	require.Equal(t, int64(1), countRows(t, s, "blob_link"))
	latest, err := s.ResolveTag(ctx, repo, "latest")
	require.NoError(t, err)
	require.Equal(t, shared, latest.Digest)
	refs, err := s.ListReferrers(ctx, repo, shared, "")
	require.NoError(t, err)
	require.Len(t, refs, n)
}
