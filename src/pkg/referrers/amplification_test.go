package referrers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// An artifactType longer than a media type can be (a 500 KB one, in the issue) is refused with 400
// before anything is read, cached or asked upstream, in projects with and without the toggle; one of
// exactly meta.MaxArtifactTypeLength bytes is served.
func TestOversizeArtifactTypeRefused(t *testing.T) {
	up, img := newSubject(t, ggcrAPI)
	e := newEnv(t, up, cacheKinds[0])
	off := e.newProject("plain", map[string]string{meta.MetaProxyReferrerAPI: "false"})
	longest := "application/" + strings.Repeat("x", meta.MaxArtifactTypeLength-len("application/"))
	for _, p := range []*meta.Project{e.project, off} {
		t.Run(p.Name, func(t *testing.T) {
			before := up.requests()
			for _, size := range []int{meta.MaxArtifactTypeLength + 1, 500 << 10} {
				at := "application/" + strings.Repeat("x", size-len("application/"))
				_, err := e.list(e.repo(repoPath, p), img.Manifest.Digest, "artifactType="+url.QueryEscape(at), "", 0)
				requireCode(t, err, errcode.ErrBadRequest)
				require.Equal(t, http.StatusBadRequest, errcode.As(err).Code.Status)
				require.Contains(t, errcode.As(err).Error(), "artifactType")
			}
			require.Equal(t, before, up.requests(), "nothing is asked upstream for a refused request")
			page, err := e.list(e.repo(repoPath, p), img.Manifest.Digest, "artifactType="+url.QueryEscape(longest), "", 0)
			require.NoError(t, err)
			require.Equal(t, []string{"artifactType"}, page.FiltersApplied)
		})
	}
}

// With a fresh unfiltered entry, 1000 distinct artifactType values cost no upstream request: each is
// answered from that entry, filtered here, and says so in OCI-Filters-Applied.
func TestDistinctFiltersWithFreshUnfilteredEntry(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		up, img, sig := newSigned(t)
		e := newEnv(t, up, ck)
		repo := e.repo(repoPath)
		require.Equal(t, descs(sig), e.mustList(repo, img.Manifest.Digest, "", "MISS"))
		before := up.referrersRequests()
		for i := range 1000 {
			p, err := e.list(repo, img.Manifest.Digest, "artifactType="+url.QueryEscape("application/vnd.test."+strconv.Itoa(i)), "", 0)
			require.NoError(t, err)
			require.Equal(t, "HIT", p.Cache)
			require.Empty(t, p.Manifests)
			require.Equal(t, []string{"artifactType"}, p.FiltersApplied)
		}
		require.Equal(t, before, up.referrersRequests(), "no upstream request for a filter while the unfiltered list is fresh")
		p, err := e.list(repo, img.Manifest.Digest, "artifactType="+url.QueryEscape(atNotation), "", 0)
		require.NoError(t, err)
		require.Equal(t, descs(sig), p.Manifests)
	})
}

// Without a fresh unfiltered entry, at most 16 distinct filters of one subject are asked upstream and
// cached; every further filter refreshes the unfiltered list once, and is then answered from it.
func TestDistinctFiltersAreBoundedPerSubject(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		up, img, _ := newSigned(t)
		e := newEnv(t, up, ck)
		repo := e.repo(repoPath)
		filter := func(i int) string { return "artifactType=" + url.QueryEscape("application/vnd.test."+strconv.Itoa(i)) }
		for i := range 16 {
			p, err := e.list(repo, img.Manifest.Digest, filter(i), "", 0)
			require.NoError(t, err)
			require.Equal(t, "MISS", p.Cache)
			_, ok := e.cached(e.key(repo, img.Manifest.Digest, filter(i)))
			require.True(t, ok, "filter %d is cached", i)
		}
		require.Equal(t, 16, up.referrersRequests())
		_, ok := e.cached(e.key(repo, img.Manifest.Digest, ""))
		require.False(t, ok)

		for i := 16; i < 1000; i++ {
			p, err := e.list(repo, img.Manifest.Digest, filter(i), "", 0)
			require.NoError(t, err)
			require.Empty(t, p.Manifests)
			require.Equal(t, []string{"artifactType"}, p.FiltersApplied)
		}
		require.Equal(t, 17, up.referrersRequests(), "one unfiltered refresh answers every filter beyond the budget")
		_, ok = e.cached(e.key(repo, img.Manifest.Digest, filter(16)))
		require.False(t, ok, "a filter beyond the budget is not cached")
		_, ok = e.cached(e.key(repo, img.Manifest.Digest, ""))
		require.True(t, ok, "the unfiltered list is")

		// A filter within the budget is still refreshed on its own once stale.
		e.clock.Advance(freshness)
		p, err := e.list(repo, img.Manifest.Digest, filter(3), "", 0)
		require.NoError(t, err)
		require.Equal(t, "MISS", p.Cache)
		require.Equal(t, 18, up.referrersRequests())
		require.Equal(t, "application/vnd.test.3", up.lastReferrersQuery().Get("artifactType"))
	})
}

// A freshness window stored before the API bounded it (9300000000 seconds overflowed time.Duration, so
// every request was a MISS) counts as the longest window: the second request is a HIT.
func TestHugeFreshnessIsNotAlwaysMiss(t *testing.T) {
	up, img := newSubject(t, ggcrAPI)
	e := newEnv(t, up, cacheKinds[0])
	p := e.newProject("huge", map[string]string{meta.MetaProxyReferrerAPI: "true", meta.MetaProxyReferrerCacheSecond: "9300000000"})
	repo := e.repo(repoPath, p)
	e.mustList(repo, img.Manifest.Digest, "", "MISS")
	e.mustList(repo, img.Manifest.Digest, "", "HIT")
	require.Equal(t, 1, up.referrersRequests())
}
