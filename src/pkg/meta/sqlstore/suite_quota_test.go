package sqlstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// testQuotaUsage checks what counts as usage: distinct blobs and manifests of the project's repositories,
// shared digests once, other projects not at all.
func testQuotaUsage(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	other := project(t, s, "other")

	used, err := s.ProjectUsage(ctx, pid)
	require.NoError(t, err)
	require.Zero(t, used)

	require.NoError(t, s.LinkBlob(ctx, pid, "library/a", dg("l1"), 100))
	require.NoError(t, s.LinkBlob(ctx, pid, "library/b", dg("l1"), 100)) // shared: once
	require.NoError(t, s.LinkBlob(ctx, pid, "library/b", dg("l2"), 20))
	push(t, s, pid, "library/a", manifest("m1", 3))
	push(t, s, pid, "library/b", manifest("m1", 3))
	require.NoError(t, s.LinkBlob(ctx, other, "other/a", dg("l3"), 1000))

	used, err = s.ProjectUsage(ctx, pid)
	require.NoError(t, err)
	require.Equal(t, int64(123), used)
	used, err = s.ProjectUsage(ctx, other)
	require.NoError(t, err)
	require.Equal(t, int64(1000), used)

	require.NoError(t, s.UnlinkBlob(ctx, "library/a", dg("l1")))
	used, _ = s.ProjectUsage(ctx, pid)
	require.Equal(t, int64(123), used, "still linked in library/b")
	require.NoError(t, s.UnlinkBlob(ctx, "library/b", dg("l1")))
	require.NoError(t, s.DeleteArtifact(ctx, "library/a", dg("m1")))
	used, _ = s.ProjectUsage(ctx, pid)
	require.Equal(t, int64(23), used)

	links, err := s.ListBlobLinks(ctx, "library/b")
	require.NoError(t, err)
	require.Equal(t, []meta.BlobLink{{Digest: dg("l2"), Size: 20}}, links)
	links, err = s.ListBlobLinks(ctx, "library/none")
	require.NoError(t, err)
	require.Empty(t, links)
}

// testQuotaLimit checks that links and manifests over the limit are refused with the numbers, that a
// digest the project holds already is free, and that -1 and 0 mean unlimited.
func testQuotaLimit(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	p := &meta.Project{Name: "small", StorageLimit: 100}
	pid, err := s.CreateProject(ctx, p)
	require.NoError(t, err)

	require.NoError(t, s.LinkBlob(ctx, pid, "small/a", dg("l1"), 60))
	push(t, s, pid, "small/a", manifest("m1", 40))
	err = s.LinkBlob(ctx, pid, "small/a", dg("l2"), 1)
	require.ErrorIs(t, err, meta.ErrQuotaExceeded)
	var qe *meta.QuotaError
	require.True(t, errors.As(err, &qe))
	require.Equal(t, meta.QuotaError{ProjectID: pid, Hard: 100, Used: 100, Adding: 1}, *qe)
	err = s.PutArtifact(ctx, pid, "small/a", manifest("m2", 1))
	require.ErrorIs(t, err, meta.ErrQuotaExceeded)
	_, err = s.GetArtifact(ctx, "small/a", dg("m2"))
	require.ErrorIs(t, err, meta.ErrNotFound, "nothing of a refused write is kept")

	// Held already: linking it into another repository, or recording the manifest again, adds nothing.
	require.NoError(t, s.LinkBlob(ctx, pid, "small/b", dg("l1"), 60))
	push(t, s, pid, "small/b", manifest("m1", 40), "v1")

	// Lowering the limit below the usage keeps the content but refuses anything new; raising it allows.
	for _, limit := range []int64{-1, 0} {
		p.StorageLimit = limit
		require.NoError(t, s.UpdateProject(ctx, p))
		require.NoError(t, s.LinkBlob(ctx, pid, "small/a", dg(fmt.Sprint("free", limit)), 1000))
	}
	p.StorageLimit = 2100
	require.NoError(t, s.UpdateProject(ctx, p))
	require.NoError(t, s.LinkBlob(ctx, pid, "small/a", dg("l3"), 0))
	err = s.LinkBlob(ctx, pid, "small/a", dg("l4"), 1)
	require.ErrorIs(t, err, meta.ErrQuotaExceeded)
}

// testQuotaConcurrent checks that concurrent links into a limited project never exceed it together.
func testQuotaConcurrent(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	pid, err := s.CreateProject(ctx, &meta.Project{Name: "race", StorageLimit: 100})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 24 {
		wg.Go(func() {
			// Each in a repository of its own: the repositories are created concurrently too.
			err := s.LinkBlob(ctx, pid, fmt.Sprintf("race/r%d", i%6), dg(fmt.Sprint("b", i)), 10)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, meta.ErrQuotaExceeded):
				refused++
			default:
				t.Errorf("link %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, 10, ok)
	require.Equal(t, 14, refused)
	used, err := s.ProjectUsage(ctx, pid)
	require.NoError(t, err)
	require.Equal(t, int64(100), used)
}

// testListCachedArtifacts checks the listing by project and across proxy-cache projects.
func testListCachedArtifacts(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	rid, err := s.CreateRegistry(ctx, &meta.Registry{Name: "hub", Type: "docker-registry", URL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	local := project(t, s, "local")
	cache, err := s.CreateProject(ctx, &meta.Project{Name: "cache", RegistryID: rid})
	require.NoError(t, err)
	push(t, s, local, "local/a", &meta.Artifact{Digest: dg("l"), MediaType: mtManifest, Size: 1, Origin: meta.OriginPushed})
	push(t, s, cache, "cache/a", &meta.Artifact{Digest: dg("c"), MediaType: mtManifest, Size: 2, Origin: meta.OriginPulled, Subject: dg("s")})

	got, err := s.ListCachedArtifacts(ctx, local)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, local, got[0].ProjectID)
	require.Equal(t, "local/a", got[0].Repository)
	require.Equal(t, dg("l"), got[0].Digest)

	got, err = s.ListCachedArtifacts(ctx, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, cache, got[0].ProjectID)
	require.Equal(t, meta.OriginPulled, got[0].Origin)
	require.Equal(t, dg("s"), got[0].Subject)
	require.Equal(t, int64(2), got[0].Size)
}
