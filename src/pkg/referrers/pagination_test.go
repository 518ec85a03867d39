package referrers_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/referrers"
)

// walk follows the controller's cursors from the first page with page size n and returns every entry
// served, in order, and the cache status of each page. between runs after each page but the last.
func (e *env) walk(repo content.Repo, subject digest.Digest, rawQuery string, n int, between func(page int)) ([]ocispec.Descriptor, []string) {
	e.t.Helper()
	var all []ocispec.Descriptor
	var statuses []string
	last := ""
	for page := 0; ; page++ {
		require.Less(e.t, page, 1000, "the walk does not end")
		p, err := e.list(repo, subject, rawQuery, last, n)
		require.NoError(e.t, err)
		require.LessOrEqual(e.t, len(p.Manifests), n)
		all = append(all, p.Manifests...)
		statuses = append(statuses, p.Cache)
		if p.Next == "" {
			return all, statuses
		}
		require.Len(e.t, p.Manifests, n, "only the last page is short")
		if between != nil {
			between(page)
		}
		last = p.Next
	}
}

// requireOnce checks that got holds each of want exactly once (in any order) and nothing else.
func requireOnce(t *testing.T, want, got []ocispec.Descriptor) {
	t.Helper()
	seen := map[digest.Digest]int{}
	for _, d := range got {
		seen[d.Digest]++
	}
	for d, n := range seen {
		require.Equal(t, 1, n, "%s served %d times", d, n)
	}
	require.ElementsMatch(t, want, got)
}

// TestPagination: 250 referrers upstream (in Link-paginated pages of 50) and 3 local ones, served in
// pages of the client's n: every entry exactly once, local ones first, the upstream pages fetched once
// for the whole walk, cursors that give the same page again and that survive a refresh in which the
// upstream lists in another order and a local push in the middle of the walk.
func TestPagination(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		subject := ocispec.Descriptor{MediaType: manifestMT, Digest: digest.FromString("popular subject"), Size: 1234}
		e, s := newScriptedEnv(t, ck, subject.Digest, 250, 50)
		repo := e.repo(repoPath)
		var locals []artifact
		for range 3 {
			a := newArtifact(t, subject, atNotation, true, nil)
			e.pushLocal(repo, a)
			locals = append(locals, a)
		}
		want := append(descs(locals...), fakeReferrers(250)...)

		got, statuses := e.walk(repo, subject.Digest, "", 7, nil)
		requireOnce(t, want, got)
		require.ElementsMatch(t, descs(locals...), got[:3], "local-only entries first")
		require.Equal(t, fakeReferrers(250), got[3:], "then the upstream's, in its order")
		require.Equal(t, 5, e.up.referrersRequests(), "five upstream pages, fetched once for the whole walk")
		require.Equal(t, content.CacheMiss, statuses[0])
		for _, st := range statuses[1:] {
			require.Equal(t, content.CacheHit, st)
		}

		// The same cursor gives the same page.
		first, err := e.list(repo, subject.Digest, "", "", 7)
		require.NoError(t, err)
		again1, err := e.list(repo, subject.Digest, "", first.Next, 7)
		require.NoError(t, err)
		again2, err := e.list(repo, subject.Digest, "", first.Next, 7)
		require.NoError(t, err)
		require.Equal(t, again1.Manifests, again2.Manifests)
		require.Equal(t, again1.Next, again2.Next)
		require.Equal(t, got[7:14], again1.Manifests)

		// In the middle of a walk the freshness window passes, the upstream now lists in the opposite
		// order, and a referrer is pushed locally: the walk still serves every entry it started with
		// exactly once.
		var extra artifact
		got, statuses = e.walk(repo, subject.Digest, "", 11, func(page int) {
			if page == 3 {
				s.reverse()
				e.clock.Advance(freshness + time.Second)
				extra = newArtifact(t, subject, atBundle, false, nil)
				e.pushLocal(repo, extra)
			}
		})
		require.Contains(t, statuses, content.CacheMiss, "the list was refreshed during the walk")
		require.Equal(t, 10, e.up.referrersRequests())
		requireOnce(t, want, got)
		requireOnce(t, append(want, extra.desc), e.mustListAll(repo, subject.Digest))

		// Without n the default page size applies; n above the maximum is capped to it.
		small, _ := e.newController(e.cache, e.clients, func(o *referrers.Options) { o.PageSize, o.MaxPageSize = 40, 60 })
		p, err := listWith(small, repo, subject.Digest, "", "", 0)
		require.NoError(t, err)
		require.Len(t, p.Manifests, 40)
		p, err = listWith(small, repo, subject.Digest, "", "", 100000)
		require.NoError(t, err)
		require.Len(t, p.Manifests, 60)
		require.NotEmpty(t, p.Next)

		// The filter applies before paging.
		typed, _ := e.walk(repo, subject.Digest, "artifactType="+url.QueryEscape(atNotation), 2, nil)
		requireOnce(t, descs(locals...), typed)

		// A cursor that is not one of ours is refused (not silently restarted), before the upstream
		// is asked.
		e.clock.Advance(freshness + time.Second)
		before := e.up.requests()
		for _, bad := range []string{"garbage", "-1." + subject.Digest.String(), "3.sha256:nothex", "x.y"} {
			_, err := e.list(repo, subject.Digest, "", bad, 7)
			requireCode(t, err, errcode.ErrPaginationInvalid)
		}
		require.Equal(t, before, e.up.requests())
	})
}

// mustListAll returns the whole list in one page.
func (e *env) mustListAll(repo content.Repo, subject digest.Digest) []ocispec.Descriptor {
	e.t.Helper()
	p, err := e.list(repo, subject, "", "", 500)
	require.NoError(e.t, err)
	require.Empty(e.t, p.Next)
	return p.Manifests
}
