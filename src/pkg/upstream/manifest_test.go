package upstream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestManifestsAndBlobsAgainstRealRegistries(t *testing.T) {
	ctx := context.Background()
	ups := map[string]*registrytest.Server{
		"distribution": registrytest.NewDistribution(t),
		"ggcr":         registrytest.NewGGCR(t, true),
	}
	for name, up := range ups {
		t.Run(name, func(t *testing.T) {
			img := up.PushImage(t, "team/app", "v1")
			c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})

			for _, ref := range []string{"v1", img.Manifest.Digest.String()} {
				d, err := c.ManifestExists(ctx, "team/app", ref)
				require.NoError(t, err)
				require.Equal(t, upstream.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Manifest.Digest, Size: img.Manifest.Size}, d)

				m, err := c.GetManifest(ctx, "team/app", ref)
				require.NoError(t, err)
				require.Equal(t, img.Body, m.Body)
				require.Equal(t, img.Manifest.Digest, m.Digest)
				require.Equal(t, ocispec.MediaTypeImageManifest, m.MediaType)
			}

			_, err := c.GetManifest(ctx, "team/app", "nope")
			requireKind(t, err, upstream.NotFound)
			_, err = c.ManifestExists(ctx, "team/app", "nope")
			requireKind(t, err, upstream.NotFound)
			_, err = c.GetManifest(ctx, "team/other", "v1")
			requireKind(t, err, upstream.NotFound)

			layer := img.Layers[0]
			rc, size, err := c.GetBlob(ctx, "team/app", layer.Digest, 0)
			require.NoError(t, err)
			requireBody(t, rc, img.Blobs[layer.Digest])
			require.Equal(t, layer.Size, size)

			rc, size, err = c.GetBlob(ctx, "team/app", layer.Digest, 100)
			require.NoError(t, err)
			requireBody(t, rc, img.Blobs[layer.Digest][100:])
			require.Equal(t, layer.Size, size, "size is the blob's total size")

			_, _, err = c.GetBlob(ctx, "team/app", digest.FromString("absent"), 0)
			requireKind(t, err, upstream.NotFound)

			tags, err := c.ListTags(ctx, "team/app")
			require.NoError(t, err)
			require.Equal(t, []string{"v1"}, tags)
		})
	}
}

func TestDockerHubLibraryMapping(t *testing.T) {
	ctx := context.Background()
	ta := registrytest.NewTokenAuth(t, "registry.docker.io")
	up := registrytest.NewDistribution(t, registrytest.WithWrapper(ta.Middleware))
	img := up.PushImage(t, "library/alpine", "3.20")
	sig := up.PushReferrer(t, "library/alpine", img.Manifest, "application/vnd.cncf.notary.signature", nil)
	up.PushTagSchemaIndex(t, "library/alpine", img.Manifest.Digest, sig)

	c := newClient(t, upstream.Endpoint{URL: up.URL, Type: upstream.TypeDockerHub}, upstream.Options{})
	d, err := c.ManifestExists(ctx, "alpine", "3.20")
	require.NoError(t, err)
	require.Equal(t, img.Manifest.Digest, d.Digest)
	m, err := c.GetManifest(ctx, "alpine", "3.20")
	require.NoError(t, err)
	require.Equal(t, img.Body, m.Body)
	rc, _, err := c.GetBlob(ctx, "alpine", img.Config.Digest, 0)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	tags, err := c.ListTags(ctx, "alpine")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"3.20", registrytest.ReferrersTag(img.Manifest.Digest)}, tags)
	res, err := c.ListReferrers(ctx, "alpine", img.Manifest.Digest.String(), "")
	require.NoError(t, err)
	require.Equal(t, []ocispec.Descriptor{sig}, res.Index.Manifests)

	for _, s := range ta.Scopes() {
		if s != "" {
			require.Equal(t, "repository:library/alpine:pull", s)
		}
	}
	require.EqualValues(t, 1, ta.Requests(), "one token for the one scope, reused by every call")
}

// scripted serves fixed answers by path for hostile-upstream cases.
type scripted map[string]func(w http.ResponseWriter, r *http.Request)

func (s scripted) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := s[r.URL.Path]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func serve(status int, contentType string, body []byte, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func TestGetManifestHostile(t *testing.T) {
	ctx := context.Background()
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	good := digest.FromBytes(body)
	other := digest.FromString("other")
	big := append([]byte(`{"schemaVersion":2,"x":"`), bytes.Repeat([]byte("a"), upstream.MaxMetadataSize)...)
	big = append(big, `"}`...)
	srv := scripted{
		"/v2/r/manifests/" + other.String(): serve(200, ocispec.MediaTypeImageManifest, body, "Docker-Content-Digest", other.String()),
		"/v2/r/manifests/" + good.String():  serve(200, ocispec.MediaTypeImageManifest, body, "Docker-Content-Digest", other.String()),
		"/v2/r/manifests/lying":             serve(200, ocispec.MediaTypeImageManifest, body, "Docker-Content-Digest", other.String()),
		"/v2/r/manifests/noct":              serve(200, "", body),
		"/v2/r/manifests/big":               serve(200, ocispec.MediaTypeImageManifest, big),
		"/v2/r/manifests/html":              serve(200, "text/html", []byte("<html>")),
		"/v2/r/manifests/clash":             serve(200, ocispec.MediaTypeImageIndex, body),
		"/v2/r/manifests/schema1":           serve(200, "application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1}`)),
		"/v2/r/manifests/limited":           serve(429, "application/json", []byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)),
		"/v2/r/manifests/broken":            serve(503, "text/plain", []byte("upstream down")),
		"/v2/r/manifests/denied":            serve(403, "application/json", []byte(`{"errors":[{"code":"DENIED"}]}`)),
	}.start(t)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})

	_, err := c.GetManifest(ctx, "r", other.String())
	requireKind(t, err, upstream.Invalid) // body does not hash to the requested digest

	m, err := c.GetManifest(ctx, "r", good.String())
	require.NoError(t, err)
	require.Equal(t, good, m.Digest)

	m, err = c.GetManifest(ctx, "r", "lying")
	require.NoError(t, err)
	require.Equal(t, good, m.Digest, "a digest header that does not match the body is ignored")

	m, err = c.GetManifest(ctx, "r", "noct")
	require.NoError(t, err)
	require.Equal(t, ocispec.MediaTypeImageManifest, m.MediaType, "media type from the body")

	for ref, kind := range map[string]upstream.Kind{
		"big": upstream.Invalid, "html": upstream.Invalid, "clash": upstream.Invalid, "schema1": upstream.Unsupported,
		"limited": upstream.RateLimited, "broken": upstream.Unavailable, "denied": upstream.Unauthorized, "absent": upstream.NotFound,
		"../../x": upstream.Invalid,
	} {
		_, err := c.GetManifest(ctx, "r", ref)
		require.Error(t, err, ref)
		e := requireKind(t, err, kind)
		if ref == "limited" {
			require.Equal(t, "TOOMANYREQUESTS", e.Code)
			require.Equal(t, 429, e.Status)
			require.True(t, upstream.IsRateLimited(err))
		}
	}
	_, err = c.GetManifest(ctx, "../etc", "v1")
	requireKind(t, err, upstream.Invalid)

	// HEAD whose digest header contradicts the digest asked for.
	_, err = c.ManifestExists(ctx, "r", good.String())
	requireKind(t, err, upstream.Invalid)
}

func TestManifestExistsWithoutDigestHeaderFallsBackToGet(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	var heads, gets int
	var accept atomic.Value
	srv := scripted{"/v2/r/manifests/v1": func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		if r.Method == http.MethodHead {
			heads++
			w.WriteHeader(200)
			return
		}
		gets++
		serve(200, ocispec.MediaTypeImageIndex, body)(w, r)
	}}.start(t)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
	d, err := c.ManifestExists(context.Background(), "r", "v1")
	require.NoError(t, err)
	require.Equal(t, upstream.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(body), Size: int64(len(body))}, d)
	require.Equal(t, 1, heads)
	require.Equal(t, 1, gets)
	for _, mt := range []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, upstream.MediaTypeDockerManifest, upstream.MediaTypeDockerManifestList} {
		require.Contains(t, accept.Load(), mt)
	}
}

func TestCancelledContext(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	srv := scripted{"/v2/r/manifests/v1": func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}}.start(t)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetManifest(ctx, "r", "v1")
		errc <- err
	}()
	cancel()
	err := <-errc
	requireKind(t, err, upstream.Unavailable)
	require.ErrorIs(t, err, context.Canceled)
}

func TestGetBlobRange(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 10))
	d := digest.FromBytes(data)
	srv := scripted{
		// ignores Range
		"/v2/full/blobs/" + d.String(): serve(200, "application/octet-stream", data),
		// answers a range that does not start where asked
		"/v2/wrong/blobs/" + d.String(): serve(206, "application/octet-stream", data[10:], "Content-Range", fmt.Sprintf("bytes 10-99/%d", len(data))),
	}.start(t)
	c := newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{})
	rc, size, err := c.GetBlob(context.Background(), "full", d, 42)
	require.NoError(t, err)
	requireBody(t, rc, data[42:])
	require.EqualValues(t, len(data), size)

	_, _, err = c.GetBlob(context.Background(), "full", d, 1000)
	requireKind(t, err, upstream.Invalid)
	_, _, err = c.GetBlob(context.Background(), "wrong", d, 42)
	requireKind(t, err, upstream.Invalid)
	_, _, err = c.GetBlob(context.Background(), "full", digest.Digest("sha256:xyz"), 0)
	requireKind(t, err, upstream.Invalid)
}
