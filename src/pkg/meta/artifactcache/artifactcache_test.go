package artifactcache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/metatest"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

const (
	repo = "proj/app"
	ttl  = 2 * time.Second
	dgA  = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgB  = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dgC  = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	mtM  = "application/vnd.oci.image.manifest.v1+json"
)

// backends are the databases every test runs on: the same store code, two engines.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"SQLite", sqltest.SQLite},
	{"PostgreSQL", sqltest.Postgres},
}

// node is one Berth process: its own store (connection pool) on the shared database, and its cache.
type node struct {
	db    *metatest.Counting
	cache *artifactcache.Store
}

// cluster opens n nodes on one fresh database of the backend, sharing a clock, with project "proj".
func cluster(t *testing.T, url string, n int) ([]node, *clocktest.Clock, int64) {
	t.Helper()
	ctx := context.Background()
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	var nodes []node
	for range n {
		c := &metatest.Counting{Store: metatest.Open(t, url)}
		nodes = append(nodes, node{db: c, cache: artifactcache.New(c, ttl, artifactcache.WithClock(clk.Now))})
	}
	pid, err := nodes[0].db.CreateProject(ctx, &meta.Project{Name: "proj"})
	require.NoError(t, err)
	return nodes, clk, pid
}

func art(d string) *meta.Artifact {
	return &meta.Artifact{Digest: d, MediaType: mtM, Size: 10, Annotations: map[string]string{"k": "v"}}
}

// requireTag checks what tag resolves to through s: want is a digest, or "" for ErrNotFound.
func requireTag(t *testing.T, s meta.ArtifactStore, tag, want string) {
	t.Helper()
	a, err := s.ResolveTag(context.Background(), repo, tag)
	if want == "" {
		require.ErrorIs(t, err, meta.ErrNotFound, "tag %s", tag)
		return
	}
	require.NoError(t, err, "tag %s", tag)
	require.Equal(t, want, a.Digest, "tag %s", tag)
}

func TestCache(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				fn   func(t *testing.T, url string)
			}{
				{"HitsSkipTheDatabase", testHits},
				{"LocalWritesVisibleAtOnce", testLocalWrites},
				{"OtherNodeWithinTheBound", testOtherNode},
				{"ReadRacingAWriteIsNotCached", testRace},
				{"MissesAreNotCached", testMisses},
				{"ConcurrentReadersAndWriter", testConcurrent},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, b.url(t)) })
			}
		})
	}
}

func testHits(t *testing.T, url string) {
	ctx := context.Background()
	nodes, clk, pid := cluster(t, url, 1)
	n := nodes[0]
	require.NoError(t, n.cache.PutArtifact(ctx, pid, repo, art(dgA), "v1"))
	for range 3 {
		a, err := n.cache.GetArtifact(ctx, repo, dgA)
		require.NoError(t, err)
		require.Equal(t, dgA, a.Digest)
		a.Annotations["k"] = "changed by the caller" // a copy: the cache keeps its own
		requireTag(t, n.cache, "v1", dgA)
	}
	require.Equal(t, int64(2), n.db.Reads.Load(), "one database read per key")
	a, err := n.cache.GetArtifact(ctx, repo, dgA)
	require.NoError(t, err)
	require.Equal(t, "v", a.Annotations["k"])

	clk.Advance(ttl)
	requireTag(t, n.cache, "v1", dgA)
	require.Equal(t, int64(3), n.db.Reads.Load(), "an expired entry is read again")
}

func testLocalWrites(t *testing.T, url string) {
	ctx := context.Background()
	nodes, _, pid := cluster(t, url, 1)
	s := nodes[0].cache
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgA), "v1", "stable"))
	requireTag(t, s, "v1", dgA)
	requireTag(t, s, "stable", dgA)

	// Push: a tag moved by a push is visible at once (the clock never moves in this test).
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgB), "v1"))
	requireTag(t, s, "v1", dgB)
	requireTag(t, s, "stable", dgA)

	// Re-tag with several tags at once.
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgA), "v1", "latest"))
	requireTag(t, s, "v1", dgA)
	requireTag(t, s, "latest", dgA)

	// Tag delete.
	require.NoError(t, s.DeleteTag(ctx, repo, "latest"))
	requireTag(t, s, "latest", "")

	// Manifest delete: the digest and every tag that pointed at it.
	_, err := s.GetArtifact(ctx, repo, dgA)
	require.NoError(t, err)
	require.NoError(t, s.DeleteArtifact(ctx, repo, dgA))
	_, err = s.GetArtifact(ctx, repo, dgA)
	require.ErrorIs(t, err, meta.ErrNotFound)
	requireTag(t, s, "v1", "")
	requireTag(t, s, "stable", "")
	a, err := s.GetArtifact(ctx, repo, dgB)
	require.NoError(t, err, "other artifacts stay")
	require.Equal(t, dgB, a.Digest)

	// Pushed again after the delete.
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgA), "v1"))
	requireTag(t, s, "v1", dgA)
}

func testOtherNode(t *testing.T, url string) {
	ctx := context.Background()
	nodes, clk, pid := cluster(t, url, 2)
	here, there := nodes[0].cache, nodes[1].cache
	require.NoError(t, there.PutArtifact(ctx, pid, repo, art(dgA), "v1"))
	requireTag(t, here, "v1", dgA)
	_, err := here.GetArtifact(ctx, repo, dgA)
	require.NoError(t, err)

	// The other node moves the tag and deletes the artifact: this node may answer from memory until
	// its entries expire, and no longer.
	require.NoError(t, there.PutArtifact(ctx, pid, repo, art(dgB), "v1"))
	require.NoError(t, there.DeleteArtifact(ctx, repo, dgA))
	requireTag(t, there, "v1", dgB)
	clk.Advance(ttl - time.Millisecond)
	requireTag(t, here, "v1", dgA) // within the bound: the cached answer
	clk.Advance(time.Millisecond)
	requireTag(t, here, "v1", dgB)
	_, err = here.GetArtifact(ctx, repo, dgA)
	require.ErrorIs(t, err, meta.ErrNotFound)
}

func testRace(t *testing.T, url string) {
	ctx := context.Background()
	nodes, _, pid := cluster(t, url, 1)
	n := nodes[0]
	require.NoError(t, n.cache.PutArtifact(ctx, pid, repo, art(dgA), "v1"))

	// The read has its answer (v1 -> A) when a push moves v1 to B: that answer is returned to the
	// reader that asked before the push, but not cached.
	n.db.AfterRead(func() {
		require.NoError(t, n.cache.PutArtifact(ctx, pid, repo, art(dgB), "v1"))
	})
	requireTag(t, n.cache, "v1", dgA)
	requireTag(t, n.cache, "v1", dgB)

	// Likewise for a delete racing a read by digest.
	_, err := n.cache.GetArtifact(ctx, repo, dgC)
	require.ErrorIs(t, err, meta.ErrNotFound)
	require.NoError(t, n.cache.PutArtifact(ctx, pid, repo, art(dgC)))
	n.db.AfterRead(func() { require.NoError(t, n.cache.DeleteArtifact(ctx, repo, dgC)) })
	_, err = n.cache.GetArtifact(ctx, repo, dgC)
	require.NoError(t, err)
	_, err = n.cache.GetArtifact(ctx, repo, dgC)
	require.ErrorIs(t, err, meta.ErrNotFound)
}

func testMisses(t *testing.T, url string) {
	ctx := context.Background()
	nodes, _, pid := cluster(t, url, 2)
	here, there := nodes[0].cache, nodes[1].cache
	requireTag(t, here, "v1", "")
	_, err := here.GetArtifact(ctx, repo, dgA)
	require.ErrorIs(t, err, meta.ErrNotFound)
	// Pushed on the other node: found here at the next request, whatever the clock.
	require.NoError(t, there.PutArtifact(ctx, pid, repo, art(dgA), "v1"))
	requireTag(t, here, "v1", dgA)
	_, err = here.GetArtifact(ctx, repo, dgA)
	require.NoError(t, err)
}

// testConcurrent moves a tag back and forth while readers resolve it: once the writer is done, no reader
// may still get a value cached before the last move.
func testConcurrent(t *testing.T, url string) {
	ctx := context.Background()
	nodes, _, pid := cluster(t, url, 1)
	s := nodes[0].cache
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgA)))
	require.NoError(t, s.PutArtifact(ctx, pid, repo, art(dgB), "v1"))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.ResolveTag(ctx, repo, "v1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	last := dgB
	for i := range 50 {
		last = []string{dgA, dgB}[i%2]
		require.NoError(t, s.PutArtifact(ctx, pid, repo, art(last), "v1"))
	}
	close(done)
	wg.Wait()
	requireTag(t, s, "v1", last)
}

func TestDisabled(t *testing.T) {
	ctx := context.Background()
	c := &metatest.Counting{Store: metatest.Open(t, sqltest.SQLite(t))}
	pid, err := c.CreateProject(ctx, &meta.Project{Name: "proj"})
	require.NoError(t, err)
	cache := artifactcache.New(c, 0)
	require.NoError(t, cache.PutArtifact(ctx, pid, repo, art(dgA), "v1"))
	requireTag(t, cache, "v1", dgA)
	requireTag(t, cache, "v1", dgA)
	require.Equal(t, int64(2), c.Reads.Load())
}
