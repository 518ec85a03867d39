package referrercache_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/metatest"
	"github.com/berth-registry/berth/src/pkg/meta/referrercache"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

const (
	repo    = "proj/app"
	subject = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	other   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func setup(t *testing.T) (*referrercache.Store, *metatest.Counting, *clocktest.Clock, int64) {
	t.Helper()
	ctx := context.Background()
	c := &metatest.Counting{Store: metatest.Open(t, sqltest.SQLite(t))}
	pid, err := c.CreateProject(ctx, &meta.Project{Name: "proj"})
	require.NoError(t, err)
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	return referrercache.New(c, 2*time.Second, referrercache.WithClock(clk.Now)), c, clk, pid
}

func referrer(n byte, subj, artifactType string) *meta.Artifact {
	d := "sha256:"
	for range 64 {
		d += string("0123456789abcdef"[n%16])
	}
	return &meta.Artifact{Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: artifactType,
		Size: 100 + int64(n), Subject: subj, Annotations: map[string]string{"n": string('a' + rune(n))}}
}

func digests(arts []*meta.Artifact) []string {
	out := make([]string, 0, len(arts))
	for _, a := range arts {
		out = append(out, a.Digest)
	}
	return out
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// between runs after a first list of subject was cached; the second list must return want and
		// reach the database wantReads times in all.
		between   func(t *testing.T, s *referrercache.Store, clk *clocktest.Clock, pid int64)
		want      []string
		wantReads int64
	}{
		{"repeat within the TTL is served from memory", func(*testing.T, *referrercache.Store, *clocktest.Clock, int64) {},
			[]string{referrer(1, subject, "a/b").Digest}, 1},
		{"expired entry is read again", func(_ *testing.T, _ *referrercache.Store, clk *clocktest.Clock, _ int64) {
			clk.Advance(2 * time.Second)
		},
			[]string{referrer(1, subject, "a/b").Digest}, 2},
		{"a referrer pushed here is visible at once", func(t *testing.T, s *referrercache.Store, _ *clocktest.Clock, pid int64) {
			require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(2, subject, "c/d"), ""))
		}, []string{referrer(2, subject, "c/d").Digest, referrer(1, subject, "a/b").Digest}, 2},
		{"a push for another subject keeps the entry", func(t *testing.T, s *referrercache.Store, _ *clocktest.Clock, pid int64) {
			require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(3, other, "c/d"), ""))
		}, []string{referrer(1, subject, "a/b").Digest}, 1},
		{"a delete drops the repository's entries", func(t *testing.T, s *referrercache.Store, _ *clocktest.Clock, _ int64) {
			require.NoError(t, s.DeleteArtifact(ctx, repo, referrer(1, subject, "a/b").Digest))
		}, []string{}, 2},
		{"a change behind the cache's back shows after the TTL only", func(t *testing.T, s *referrercache.Store, clk *clocktest.Clock, pid int64) {
			// Another node writes to the shared database directly.
			require.NoError(t, s.ArtifactStore.PutArtifact(ctx, pid, repo, referrer(4, subject, "e/f"), ""))
			got := list(t, s, subject, "")
			require.Len(t, got, 1, "within the TTL the cached list is served")
			clk.Advance(2 * time.Second)
		}, []string{referrer(4, subject, "e/f").Digest, referrer(1, subject, "a/b").Digest}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, clk, pid := setup(t)
			require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(1, subject, "a/b"), ""))
			first := list(t, s, subject, "")
			require.Equal(t, []string{referrer(1, subject, "a/b").Digest}, digests(first))
			tt.between(t, s, clk, pid)
			got := list(t, s, subject, "")
			require.Equal(t, tt.want, digests(got))
			require.Equal(t, tt.wantReads, c.Reads.Load())
		})
	}
}

func TestFilteredListsAreSeparateAndInvalidatedTogether(t *testing.T) {
	ctx := context.Background()
	s, c, _, pid := setup(t)
	require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(1, subject, "a/b"), ""))
	for range 2 {
		all := list(t, s, subject, "")
		require.Len(t, all, 1)
		none := list(t, s, subject, "x/y")
		require.Empty(t, none)
	}
	require.EqualValues(t, 2, c.Reads.Load(), "one read per filter")
	require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(2, subject, "x/y"), ""))
	got := list(t, s, subject, "x/y")
	require.Equal(t, []string{referrer(2, subject, "x/y").Digest}, digests(got))
}

func TestCallersGetCopies(t *testing.T) {
	ctx := context.Background()
	s, _, _, pid := setup(t)
	require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(1, subject, "a/b"), ""))
	got := list(t, s, subject, "")
	got[0].ArtifactType, got[0].Annotations["n"] = "changed", "changed"
	again := list(t, s, subject, "")
	require.Equal(t, "a/b", again[0].ArtifactType)
	require.Equal(t, "b", again[0].Annotations["n"])
}

// A read that raced a push (the database answered before the push, the push invalidated before the
// read stored its answer) must not cache its stale answer.
func TestReadRacingAPushIsNotCached(t *testing.T) {
	ctx := context.Background()
	s, c, _, pid := setup(t)
	c.AfterRead(func() { require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(1, subject, "a/b"), "")) })
	stale := list(t, s, subject, "")
	require.Empty(t, stale, "the read answered before the push")
	got := list(t, s, subject, "")
	require.Equal(t, []string{referrer(1, subject, "a/b").Digest}, digests(got))
}

func TestConcurrentReadsAndPushes(t *testing.T) {
	ctx := context.Background()
	s, _, _, pid := setup(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				list(t, s, subject, "")
			}
		})
		wg.Go(func() { require.NoError(t, s.PutArtifact(ctx, pid, repo, referrer(byte(i), subject, "a/b"), "")) })
	}
	wg.Wait()
	got := list(t, s, subject, "")
	require.Len(t, got, 8, "every push is visible once all writes returned")
}

// An artifactType longer than a media type can be is read through but never kept: a client must not
// be able to make the cache hold its junk.
func TestOversizeKeyIsNotCached(t *testing.T) {
	ctx := context.Background()
	s, c, _, _ := setup(t)
	long := "application/" + strings.Repeat("x", 500<<10)
	for range 2 {
		got, err := s.ListReferrers(ctx, repo, subject, long)
		require.NoError(t, err)
		require.Empty(t, got)
	}
	require.EqualValues(t, 2, c.Reads.Load(), "an oversize key is read from the store every time")
	at := "application/" + strings.Repeat("x", meta.MaxArtifactTypeLength-len("application/"))
	for range 2 {
		_, err := s.ListReferrers(ctx, repo, subject, at)
		require.NoError(t, err)
	}
	require.EqualValues(t, 3, c.Reads.Load(), "a %d-byte artifactType is cached", len(at))
}

// The key of a cached list must not keep the client's request alive: net/http hands out the query and
// path as slices of one request-line string, so a key that is such a slice pins the whole line (a
// 500 KB query per entry, in the issue) for as long as the entry lives. Thirty-two 1 MiB "request
// lines" whose small artifactType and repository slices were used as keys must be collectable once
// the requests are gone.
func TestKeysDoNotRetainRequestMemory(t *testing.T) {
	ctx := context.Background()
	s, c, _, _ := setup(t)
	const requests, lineSize = 32, 1 << 20
	filler := strings.Repeat("j", lineSize)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range requests {
		// A fresh request line each time, as net/http allocates one per request.
		line := "GET /v2/" + repo + "/referrers/" + subject + "?junk=" + filler + "&artifactType=application/x-" + strconv.Itoa(i) + " HTTP/1.1"
		start := strings.Index(line, "/v2/") + len("/v2/")
		repoSlice := line[start : start+len(repo)]
		at := line[strings.Index(line, "artifactType=")+len("artifactType=") : strings.LastIndex(line, " ")]
		_, err := s.ListReferrers(ctx, repoSlice, subject, at)
		require.NoError(t, err)
	}
	require.EqualValues(t, requests, c.Reads.Load())
	retained := int64(heap()) - int64(before)
	require.Less(t, retained, int64(requests*lineSize/4),
		"%d KiB still held after %d requests of %d KiB: cache keys pin the request lines", retained>>10, requests, lineSize>>10)
	// The entries are still cached (the test measured a live cache, not an emptied one).
	list(t, s, subject, "application/x-0")
	require.EqualValues(t, requests, c.Reads.Load())
}

// list reads the referrers of subject in repo through s and requires no error.
func list(t *testing.T, s meta.ArtifactStore, subject, artifactType string) []*meta.Artifact {
	t.Helper()
	arts, err := s.ListReferrers(context.Background(), repo, subject, artifactType)
	require.NoError(t, err)
	return arts
}
