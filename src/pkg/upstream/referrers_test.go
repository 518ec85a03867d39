package upstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

const (
	sigType  = "application/vnd.dev.sigstore.bundle.v0.3+json"
	sbomType = "application/spdx+json"
)

func TestReferrersAPIOnGGCR(t *testing.T) {
	ctx := context.Background()
	up := registrytest.NewGGCR(t, true)
	img := up.PushImage(t, "app", "v1")
	sig := up.PushReferrer(t, "app", img.Manifest, sigType, map[string]string{"org.example": "sig"})
	sbom := up.PushReferrer(t, "app", img.Manifest, sbomType, nil)
	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})
	require.Equal(t, upstream.CapabilityUnknown, c.ReferrersCapability())

	res, err := c.ListReferrers(ctx, "app", img.Manifest.Digest.String(), "artifactType="+sigType)
	require.NoError(t, err)
	require.Equal(t, upstream.SourceAPI, res.Source)
	require.Empty(t, res.FiltersApplied, "ggcr ignores artifactType and says so by omitting the header")
	require.ElementsMatch(t, []ocispec.Descriptor{sig, sbom}, res.Index.Manifests)
	require.Equal(t, 2, res.Index.SchemaVersion)
	require.Equal(t, ocispec.MediaTypeImageIndex, res.Index.MediaType)
	require.Equal(t, upstream.CapabilitySupported, c.ReferrersCapability())

	res, err = c.ListReferrers(ctx, "app", digest.FromString("no referrers").String(), "")
	require.NoError(t, err)
	require.NotNil(t, res.Index.Manifests)
	require.Empty(t, res.Index.Manifests)

	_, err = c.ListReferrers(ctx, "absent", img.Manifest.Digest.String(), "")
	e := requireKind(t, err, upstream.NotFound)
	require.Equal(t, "NAME_UNKNOWN", e.Code)

	_, err = c.ListReferrers(ctx, "app", "v1", "")
	requireKind(t, err, upstream.Invalid)
}

func TestReferrersTagSchemaOnDistribution(t *testing.T) {
	ctx := context.Background()
	cnt := newCounter()
	up := registrytest.NewDistribution(t, registrytest.WithWrapper(cnt.Wrap))
	img := up.PushImage(t, "team/app", "v1")
	sig := up.PushReferrer(t, "team/app", img.Manifest, sigType, map[string]string{"k": "v"})
	sbom := up.PushReferrer(t, "team/app", img.Manifest, sbomType, nil)
	up.PushTagSchemaIndex(t, "team/app", img.Manifest.Digest, sig, sbom)
	clk := newClock()
	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{Now: clk.Now, ReprobeInterval: time.Minute})

	res, err := c.ListReferrers(ctx, "team/app", img.Manifest.Digest.String(), "")
	require.NoError(t, err)
	require.Equal(t, upstream.SourceTagSchema, res.Source)
	require.Equal(t, []ocispec.Descriptor{sig, sbom}, res.Index.Manifests)
	require.Empty(t, res.FiltersApplied)
	require.Equal(t, upstream.CapabilityUnsupported, c.ReferrersCapability())
	require.Equal(t, 1, cnt.Get("referrers"))

	res, err = c.ListReferrers(ctx, "team/app", img.Manifest.Digest.String(), "artifactType="+strings.ReplaceAll(sbomType, "+", "%2B"))
	require.NoError(t, err)
	require.Equal(t, []ocispec.Descriptor{sbom}, res.Index.Manifests)
	require.Equal(t, []string{"artifactType"}, res.FiltersApplied)
	require.Equal(t, 1, cnt.Get("referrers"), "the unsupported API is not asked again before the reprobe interval")

	res, err = c.ListReferrers(ctx, "team/app", img.Layers[0].Digest.String(), "")
	require.NoError(t, err)
	require.Empty(t, res.Index.Manifests, "no tag: no referrers")
	require.Equal(t, upstream.SourceTagSchema, res.Source)

	res, err = c.ListReferrers(ctx, "absent/repo", img.Manifest.Digest.String(), "")
	require.NoError(t, err)
	require.Empty(t, res.Index.Manifests)

	// A tag-schema tag that holds an image manifest is not an index: no referrers.
	other := up.PushImage(t, "team/app", "")
	up.PushManifest(t, "team/app", registrytest.ReferrersTag(img.Config.Digest), other.Manifest.MediaType, other.Body)
	res, err = c.ListReferrers(ctx, "team/app", img.Config.Digest.String(), "")
	require.NoError(t, err)
	require.Empty(t, res.Index.Manifests)

	clk.Advance(2 * time.Minute)
	_, err = c.ListReferrers(ctx, "team/app", img.Manifest.Digest.String(), "")
	require.NoError(t, err)
	require.Equal(t, 2, cnt.Get("referrers"), "re-probed after the interval")
	require.Equal(t, upstream.CapabilityUnsupported, c.ReferrersCapability())
}

func TestReferrersGGCRWithoutAPIFallsBack(t *testing.T) {
	ctx := context.Background()
	up := registrytest.NewGGCR(t, false)
	img := up.PushImage(t, "app", "v1")
	sig := up.PushReferrer(t, "app", img.Manifest, sigType, nil)

	// A sha512 subject: the spec's truncated tag and the untruncated one are both read and merged.
	subject := digest.SHA512.FromString("subject")
	sbom := up.PushReferrer(t, "app", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 10}, sbomType, nil)
	up.PushManifest(t, "app", registrytest.ReferrersTag(subject), ocispec.MediaTypeImageIndex, registrytest.IndexBody(t, sig))
	up.PushManifest(t, "app", "sha512-"+subject.Encoded(), ocispec.MediaTypeImageIndex, registrytest.IndexBody(t, sig, sbom))

	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})
	res, err := c.ListReferrers(ctx, "app", subject.String(), "")
	require.NoError(t, err)
	require.Equal(t, upstream.SourceTagSchema, res.Source)
	require.Equal(t, []ocispec.Descriptor{sig, sbom}, res.Index.Manifests)
}

// referrersUpstream is a hostile or quirky upstream: handler answers the referrers endpoint; the
// tag-schema tag is absent unless tagIndex is set.
// listAll lists subject's referrers in repository "r" of srv with a new client on opts, unfiltered.
func listAll(t *testing.T, srv *httptest.Server, subject digest.Digest, opts upstream.Options) (*upstream.ReferrersResult, error) {
	t.Helper()
	return newClient(t, upstream.Endpoint{URL: srv.URL}, opts).ListReferrers(context.Background(), "r", subject.String(), "")
}

// thenPage2 answers the first page with one referrer and a Link to page 2, and page 2 with second.
func thenPage2(t *testing.T, second http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")), "Link", `<?page=2>; rel="next"`)(w, r)
			return
		}
		second(w, r)
	}
}

func referrersUpstream(t *testing.T, subject digest.Digest, handler http.HandlerFunc, tagIndex []byte) *httptest.Server {
	s := scripted{"/v2/r/referrers/" + subject.String(): handler}
	if tagIndex != nil {
		s["/v2/r/manifests/"+registrytest.ReferrersTag(subject)] = serve(200, ocispec.MediaTypeImageIndex, tagIndex)
	}
	return s.start(t)
}

func desc(s string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: int64(len(s)), ArtifactType: sigType}
}

func indexJSON(t *testing.T, descs ...ocispec.Descriptor) []byte {
	return registrytest.IndexBody(t, descs...)
}

func TestReferrersUnsupportedSignals(t *testing.T) {
	subject := digest.FromString("subject")
	tagged := desc("from the tag")
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"router 404 plain text", serve(404, "text/plain", []byte("404 page not found"))},
		{"404 other code", serve(404, "application/json", []byte(`{"errors":[{"code":"METHOD_UNKNOWN"}]}`))},
		{"400", serve(400, "application/json", []byte(`{"errors":[{"code":"UNSUPPORTED"}]}`))},
		{"405", serve(405, "", nil)},
		{"406", serve(406, "", nil)},
		{"200 wrong content type", serve(200, "application/json", indexJSON(t, desc("api")))},
		{"200 not JSON", serve(200, ocispec.MediaTypeImageIndex, []byte("<html>hello</html>"))},
		{"200 not an index", serve(200, ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`))},
		{"200 schema 1", serve(200, ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":1}`))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := referrersUpstream(t, subject, tc.handler, indexJSON(t, tagged))
			c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
			res, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
			require.NoError(t, err)
			require.Equal(t, upstream.SourceTagSchema, res.Source)
			require.Equal(t, []ocispec.Descriptor{tagged}, res.Index.Manifests)
			require.Equal(t, upstream.CapabilityUnsupported, c.ReferrersCapability())
		})
	}
}

func TestReferrersErrorsAreNotFallbacks(t *testing.T) {
	subject := digest.FromString("subject")
	cases := []struct {
		name    string
		handler http.HandlerFunc
		kind    upstream.Kind
	}{
		{"404 MANIFEST_UNKNOWN", serve(404, "application/json", []byte(`{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`)), upstream.NotFound},
		{"429", serve(429, "application/json", []byte(`{"errors":[{"code":"TOOMANYREQUESTS"}]}`)), upstream.RateLimited},
		{"500", serve(500, "text/plain", []byte("boom")), upstream.Unavailable},
		{"502", serve(502, "", nil), upstream.Unavailable},
		{"403", serve(403, "", nil), upstream.Unauthorized},
		{"oversize", serve(200, ocispec.MediaTypeImageIndex, bytes.Repeat([]byte(" "), upstream.MaxMetadataSize+1)), upstream.Invalid},
		{"link to another host", serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")), "Link", `<https://evil.example/v2/r/referrers/x>; rel="next"`), upstream.Invalid},
		{"link to another port", func(w http.ResponseWriter, r *http.Request) {
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")), "Link", fmt.Sprintf(`<http://%s:1/v2/r/referrers/x>; rel="next"`, strings.Split(r.Host, ":")[0]))(w, r)
		}, upstream.Invalid},
		{"link to https on the same host", func(w http.ResponseWriter, r *http.Request) {
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc("a")), "Link", fmt.Sprintf(`<https://%s/v2/r/referrers/x>; rel="next"`, r.Host))(w, r)
		}, upstream.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := referrersUpstream(t, subject, tc.handler, indexJSON(t, desc("tag")))
			c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
			_, err := c.ListReferrers(context.Background(), "r", subject.String(), "")
			requireKind(t, err, tc.kind)
			require.Equal(t, upstream.CapabilityUnknown, c.ReferrersCapability())
		})
	}
}

func TestReferrersPagination(t *testing.T) {
	subject := digest.FromString("subject")
	a, b, c3 := desc("a"), desc("b"), desc("c")
	var pages atomic.Int64
	var gotQuery atomic.Value
	srv := referrersUpstream(t, subject, func(w http.ResponseWriter, r *http.Request) {
		pages.Add(1)
		if r.Header.Get("Accept") != ocispec.MediaTypeImageIndex {
			serve(406, "", nil)(w, r)
			return
		}
		switch r.URL.Query().Get("page") {
		case "":
			gotQuery.Store(r.URL.RawQuery)
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, a, b), "Link", `<?page=2&artifactType=x>; rel="next"`, "OCI-Filters-Applied", "artifactType, other")(w, r)
		case "2":
			// Duplicate b, a bad digest and a negative size; the filter header names only one filter.
			body := fmt.Sprintf(`{"schemaVersion":2,"manifests":[%s,%s,{"mediaType":"m","digest":"sha256:nothex","size":1},{"mediaType":"m","digest":%q,"size":-1},"junk"]}`,
				mustJSON(t, b), mustJSON(t, c3), digest.FromString("neg"))
			serve(200, ocispec.MediaTypeImageIndex+"; charset=utf-8", []byte(body), "Link", `</v2/r/referrers/`+subject.String()+`?page=3>; rel="next"`, "OCI-Filters-Applied", "artifactType")(w, r)
		default:
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t), "OCI-Filters-Applied", "artifactType")(w, r)
		}
	}, nil)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
	res, err := c.ListReferrers(context.Background(), "r", subject.String(), "artifactType=x&n=2")
	require.NoError(t, err)
	require.Equal(t, "artifactType=x&n=2", gotQuery.Load(), "raw query sent verbatim")
	require.EqualValues(t, 3, pages.Load())
	require.Equal(t, []ocispec.Descriptor{a, b, c3}, res.Index.Manifests)
	require.Equal(t, 3, res.Dropped)
	require.Equal(t, []string{"artifactType"}, res.FiltersApplied)
	require.Equal(t, upstream.SourceAPI, res.Source)
}

func TestReferrersPaginationHostile(t *testing.T) {
	subject := digest.FromString("subject")
	t.Run("endless", func(t *testing.T) {
		var pages atomic.Int64
		srv := referrersUpstream(t, subject, func(w http.ResponseWriter, r *http.Request) {
			n := pages.Add(1)
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc(fmt.Sprint(n))), "Link", fmt.Sprintf(`<?page=%d>; rel="next"`, n))(w, r)
		}, nil)
		_, err := listAll(t, srv, subject, upstream.Options{MaxPages: 7})
		requireKind(t, err, upstream.Invalid)
		require.EqualValues(t, 7, pages.Load())
	})
	t.Run("later page not an index", func(t *testing.T) {
		srv := referrersUpstream(t, subject, thenPage2(t, serve(200, "text/html", []byte("<html>"))), indexJSON(t, desc("tag")))
		_, err := listAll(t, srv, subject, upstream.Options{})
		requireKind(t, err, upstream.Invalid)
	})
	t.Run("later page 404", func(t *testing.T) {
		srv := referrersUpstream(t, subject, thenPage2(t, serve(404, "text/plain", []byte("gone"))), nil)
		_, err := listAll(t, srv, subject, upstream.Options{})
		requireKind(t, err, upstream.NotFound)
	})
}

func TestReferrersTagSchemaHostile(t *testing.T) {
	subject := digest.FromString("subject")
	router404 := serve(404, "text/plain", []byte("404 page not found"))
	t.Run("oversize tag index is an error, not an empty list", func(t *testing.T) {
		big := append([]byte(`{"schemaVersion":2,"manifests":[],"pad":"`), bytes.Repeat([]byte("x"), upstream.MaxMetadataSize)...)
		srv := referrersUpstream(t, subject, router404, append(big, `"}`...))
		_, err := listAll(t, srv, subject, upstream.Options{})
		requireKind(t, err, upstream.Invalid)
	})
	t.Run("tag index with bad descriptors", func(t *testing.T) {
		body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s,{"digest":"md5:abc","size":1}]}`, ocispec.MediaTypeImageIndex, mustJSON(t, desc("ok")))
		srv := referrersUpstream(t, subject, router404, []byte(body))
		res, err := listAll(t, srv, subject, upstream.Options{})
		require.NoError(t, err)
		require.Equal(t, []ocispec.Descriptor{desc("ok")}, res.Index.Manifests)
		require.Equal(t, 1, res.Dropped)
	})
	t.Run("tag fetch rate limited", func(t *testing.T) {
		srv := scripted{
			"/v2/r/referrers/" + subject.String():                   router404,
			"/v2/r/manifests/" + registrytest.ReferrersTag(subject): serve(429, "", nil),
		}.start(t)
		_, err := listAll(t, srv, subject, upstream.Options{})
		requireKind(t, err, upstream.RateLimited)
	})
}

func TestReferrersReprobeFindsNewAPI(t *testing.T) {
	subject := digest.FromString("subject")
	var supported atomic.Bool
	srv := referrersUpstream(t, subject, func(w http.ResponseWriter, r *http.Request) {
		if supported.Load() {
			serve(200, ocispec.MediaTypeImageIndex, indexJSON(t, desc("api")))(w, r)
			return
		}
		serve(404, "text/plain", nil)(w, r)
	}, indexJSON(t, desc("tag")))
	clk := newClock()
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{Now: clk.Now})
	ctx := context.Background()

	res, err := c.ListReferrers(ctx, "r", subject.String(), "")
	require.NoError(t, err)
	require.Equal(t, upstream.SourceTagSchema, res.Source)
	supported.Store(true)
	res, err = c.ListReferrers(ctx, "r", subject.String(), "")
	require.NoError(t, err)
	require.Equal(t, upstream.SourceTagSchema, res.Source, "within the default 10 min interval")
	clk.Advance(11 * time.Minute)
	res, err = c.ListReferrers(ctx, "r", subject.String(), "")
	require.NoError(t, err)
	require.Equal(t, upstream.SourceAPI, res.Source)
	require.Equal(t, []ocispec.Descriptor{desc("api")}, res.Index.Manifests)
	require.Equal(t, upstream.CapabilitySupported, c.ReferrersCapability())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
