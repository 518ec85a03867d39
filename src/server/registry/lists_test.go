package registry_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

var linkRE = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// nextPath returns the path of a rel="next" Link header, "" when there is none.
func nextPath(t *testing.T, r resp) string {
	t.Helper()
	l := r.header.Get("Link")
	if l == "" {
		return ""
	}
	m := linkRE.FindStringSubmatch(l)
	require.NotNil(t, m, "Link %q", l)
	return m[1]
}

func TestTagsList(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	img := e.pushImage(repo, "", imageOpts{seed: "tags"})
	tags := []string{"a", "b", "c", "d", "e"}
	for _, tag := range tags {
		r := e.pushManifest(repo, tag, ocispec.MediaTypeImageManifest, img.body)
		require.Equal(t, http.StatusCreated, r.status)
	}
	type list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	for _, tc := range []struct {
		name  string
		query string
		want  []string
		link  string
	}{
		{"all", "", tags, ""},
		{"n=2", "?n=2", []string{"a", "b"}, "/v2/private/app/tags/list?last=b&n=2"},
		{"n=2 last=b", "?n=2&last=b", []string{"c", "d"}, "/v2/private/app/tags/list?last=d&n=2"},
		{"n=2 last=d", "?n=2&last=d", []string{"e"}, ""},
		{"exactly the rest", "?n=3&last=b", []string{"c", "d", "e"}, ""},
		{"last only", "?last=c", []string{"d", "e"}, ""},
		{"n=0", "?n=0", []string{}, ""},
		{"past the end", "?last=z", []string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/tags/list" + tc.query})
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			var l list
			require.NoError(t, json.Unmarshal(r.body, &l))
			require.Equal(t, repo, l.Name)
			require.Equal(t, tc.want, l.Tags)
			require.Equal(t, tc.link, nextPath(t, r))
		})
	}
	t.Run("unknown repository", func(t *testing.T) {
		requireError(t, e.do(req{method: http.MethodGet, path: "/v2/private/none/tags/list"}), http.StatusNotFound, "NAME_UNKNOWN")
		requireError(t, e.do(req{method: http.MethodGet, path: "/v2/private/none/tags/list?n=0"}), http.StatusNotFound, "NAME_UNKNOWN")
	})
	for _, q := range []string{"?n=-1", "?n=abc", "?n=1&n=2"} {
		t.Run("invalid "+q, func(t *testing.T) {
			requireError(t, e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/tags/list" + q}), http.StatusBadRequest, "PAGINATION_NUMBER_INVALID")
		})
	}
}

func TestCatalog(t *testing.T) {
	e := newEnv(t)
	for _, repo := range []string{"private/a", "public/b", "other/c"} {
		e.pushBlob(repo, []byte("x"))
	}
	type catalog struct {
		Repositories []string `json:"repositories"`
	}
	var got []string
	path := "/v2/_catalog?n=2"
	for path != "" {
		r := e.do(req{method: http.MethodGet, path: path})
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		var c catalog
		require.NoError(t, json.Unmarshal(r.body, &c))
		require.LessOrEqual(t, len(c.Repositories), 2)
		got = append(got, c.Repositories...)
		path = nextPath(t, r)
		if path != "" {
			u, err := url.Parse(path)
			require.NoError(t, err)
			require.Equal(t, "/v2/_catalog", u.Path)
		}
	}
	require.Equal(t, []string{"other/c", "private/a", "public/b"}, got)

	r := e.do(req{method: http.MethodGet, path: "/v2/_catalog"})
	require.JSONEq(t, `{"repositories":["other/c","private/a","public/b"]}`, string(r.body))
}
