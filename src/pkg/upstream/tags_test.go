package upstream_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestListTagsPaginatesDistribution(t *testing.T) {
	cnt := newCounter()
	up := registrytest.NewDistribution(t, registrytest.WithMaxTags(2), registrytest.WithWrapper(cnt.Wrap))
	img := up.PushImage(t, "paged", "a")
	want := []string{"a"}
	for _, tag := range []string{"b", "c", "d", "e"} {
		up.PushManifest(t, "paged", tag, img.Manifest.MediaType, img.Body)
		want = append(want, tag)
	}
	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{TagPageSize: 2})
	tags, err := c.ListTags(context.Background(), "paged")
	require.NoError(t, err)
	sort.Strings(tags)
	require.Equal(t, want, tags)
	require.Equal(t, 3, cnt.Get("tags"), "five tags, two per page, relative Link followed")

	c = newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{TagPageSize: 2, MaxPages: 2})
	_, err = c.ListTags(context.Background(), "paged")
	requireKind(t, err, upstream.Invalid)

	_, err = c.ListTags(context.Background(), "absent")
	e := requireKind(t, err, upstream.NotFound)
	require.Equal(t, "NAME_UNKNOWN", e.Code)
}

func TestListTagsHostile(t *testing.T) {
	var loops atomic.Int64
	other := scripted{"/v2/r/tags/list": serve(200, "application/json", []byte(`{"tags":["evil"]}`))}.start(t)
	srv := scripted{
		"/v2/cross/tags/list": serve(200, "application/json", []byte(`{"tags":["a"]}`), "Link", fmt.Sprintf(`<%s/v2/r/tags/list>; rel="next"`, other.URL)),
		"/v2/loop/tags/list": func(w http.ResponseWriter, r *http.Request) {
			n := loops.Add(1)
			serve(200, "application/json", []byte(`{"tags":["t"]}`), "Link", fmt.Sprintf(`</v2/loop/tags/list?last=%d>; rel="next"`, n))(w, r)
		},
		"/v2/back/tags/list": serve(200, "application/json", []byte(`{"tags":["t"]}`), "Link", `</v2/back/tags/list>; rel="next"`),
		"/v2/junk/tags/list": serve(200, "application/json", []byte(`<html>`)),
		"/v2/null/tags/list": serve(200, "application/json", []byte(`{"name":"null","tags":null}`)),
		"/v2/prev/tags/list": serve(200, "application/json", []byte(`{"tags":["p"]}`), "Link", `</v2/x/tags/list>; rel="prev"`),
	}.start(t)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{MaxPages: 5})
	ctx := context.Background()

	requireInvalidTags(t, c, "cross", "loop", "back", "junk")
	require.EqualValues(t, 5, loops.Load(), "loop stops at the page cap")
	tags, err := c.ListTags(ctx, "null")
	require.NoError(t, err)
	require.Equal(t, []string{}, tags)
	tags, err = c.ListTags(ctx, "prev")
	require.NoError(t, err)
	require.Equal(t, []string{"p"}, tags)
}

// requireInvalidTags requires that listing the tags of each repo through c fails as upstream.Invalid.
func requireInvalidTags(t *testing.T, c *upstream.Client, repos ...string) {
	t.Helper()
	for _, repo := range repos {
		_, err := c.ListTags(context.Background(), repo)
		requireKind(t, err, upstream.Invalid)
	}
}
