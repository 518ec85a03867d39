package proxy_test

import (
	"encoding/json"
	"net/http"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// Tag lists come from the upstream first (all of its pages), from the local tags when the upstream
// fails, and are paginated with n and last either way.
func TestTagsList(t *testing.T) {
	// Upstream pages of two tags: the client follows the upstream's Link to get them all.
	up := newUpstream(t, distribution, registrytest.WithMaxTags(2))
	img := up.PushImage(t, "app", "a")
	for _, tag := range []string{"e", "d", "c", "b"} {
		up.PushManifest(t, "app", tag, ocispec.MediaTypeImageManifest, img.Body)
	}
	e := newEnv(t, up)

	steps := []struct {
		name   string
		before func()
		repo   string // "app" unless set
		query  string
		status int // 200 unless set
		code   string
		tags   []string
		link   string // the Link header expected
	}{
		{name: "upstream first, nothing pulled yet", tags: []string{"a", "b", "c", "d", "e"}},
		{name: "n", query: "?n=2", tags: []string{"a", "b"}, link: `</v2/cache/app/tags/list?last=b&n=2>; rel="next"`},
		{name: "n and last", query: "?n=2&last=b", tags: []string{"c", "d"}, link: `</v2/cache/app/tags/list?last=d&n=2>; rel="next"`},
		{name: "last page", query: "?n=2&last=d", tags: []string{"e"}},
		{name: "last only", query: "?last=c", tags: []string{"d", "e"}},
		{name: "last between tags", query: "?last=bb&n=1", tags: []string{"c"}, link: `</v2/cache/app/tags/list?last=c&n=1>; rel="next"`},
		{name: "upstream 503: local tags",
			before: func() {
				for _, tag := range []string{"c", "a"} {
					requireOK(t, e.get("app/manifests/"+tag), img.Body)
				}
				up.faults.set(failWith(http.MethodGet, "tags", http.StatusServiceUnavailable))
			},
			tags: []string{"a", "c"}},
		{name: "local, n", query: "?n=1", tags: []string{"a"}, link: `</v2/cache/app/tags/list?last=a&n=1>; rel="next"`},
		{name: "local, n and last", query: "?n=1&last=a", tags: []string{"c"}},
		{name: "upstream 429: local tags",
			before: func() { up.faults.set(failWith(http.MethodGet, "tags", http.StatusTooManyRequests)) },
			tags:   []string{"a", "c"}},
		{name: "upstream 404: NAME_UNKNOWN", before: func() { up.faults.set(nil) }, repo: "nothing",
			status: http.StatusNotFound, code: "NAME_UNKNOWN"},
		{name: "upstream stopped: local tags", before: up.Close, tags: []string{"a", "c"}},
		{name: "upstream stopped, repository never pulled", repo: "nothing",
			status: http.StatusServiceUnavailable, code: "UPSTREAM_UNAVAILABLE"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		repo := s.repo
		if repo == "" {
			repo = "app"
		}
		r := e.get(repo + "/tags/list" + s.query)
		if s.status != 0 {
			requireCode(t, r, s.status, s.code)
			continue
		}
		require.Equal(t, http.StatusOK, r.status, "%s: %s", s.name, r.body)
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		require.NoError(t, json.Unmarshal(r.body, &list), s.name)
		require.Equal(t, "cache/"+repo, list.Name, s.name)
		require.Equal(t, s.tags, list.Tags, s.name)
		require.Equal(t, s.link, r.header.Get("Link"), s.name)
	}
	require.Greater(t, up.hits.count(http.MethodGet, "tags"), 6, "one upstream listing of several pages per request")
}
