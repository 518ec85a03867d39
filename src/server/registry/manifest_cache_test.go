package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/server/registry"
)

// BenchmarkManifestRead serves manifest GET and HEAD, by tag and by digest, of a public project on
// SQLite, through the handler as `berth serve` wires it (projects cached), with the manifest/tag cache
// (package artifactcache) and the manifest body cache of package local ("cached"), and without either
// ("db"). In-process, no network:
//
//	go test -run '^$' -bench ManifestRead -benchmem ./src/server/registry/
func BenchmarkManifestRead(b *testing.B) {
	for _, cached := range []bool{false, true} {
		h := servedHandler(b, cached)
		digest := pushServed(b, h, "v1", "bench")
		name := "db"
		if cached {
			name = "cached"
		}
		for _, tc := range []struct{ method, ref string }{
			{http.MethodGet, "v1"}, {http.MethodGet, digest}, {http.MethodHead, "v1"},
		} {
			ref := "tag"
			if tc.ref == digest {
				ref = "digest"
			}
			b.Run(name+"/"+tc.method+"-"+ref, func(b *testing.B) {
				r := httptest.NewRequest(tc.method, "/v2/library/app/manifests/"+tc.ref, nil)
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}

// servedHandler is the registry handler over SQLite and storage.FS, wired as `berth serve` wires it
// (projects cached; with cached, also the manifest/tag cache and the manifest body cache), with a public
// project "library".
func servedHandler(tb testing.TB, cached bool) http.Handler {
	fs, ms := contenttest.Stores(tb)
	contenttest.CreateProjects(tb, ms, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
	var artifacts meta.ArtifactStore = ms
	opts := local.Options{ManifestCacheBytes: -1}
	if cached {
		artifacts = artifactcache.New(ms, time.Hour)
		opts.ManifestCacheBytes = 0 // the default
	}
	svc := local.New(fs, artifacts, ms, opts)
	tb.Cleanup(func() { _ = svc.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return registry.New(svc, projectcache.New(ms, time.Hour).ReadOnly(), auth.NewAuthenticator(adminPassword), log, registry.Options{})
}

// serveAs sends one request as admin.
func serveAs(h http.Handler, method, path, ct string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.SetBasicAuth(auth.AdminUser, adminPassword)
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// pushServed pushes an image (config, one layer, manifest made unique by seed) to library/app under ref
// and returns the manifest's digest.
func pushServed(tb testing.TB, h http.Handler, ref, seed string) string {
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux"}`), bytes.Repeat([]byte("l"), 1024)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer),
			Size: int64(len(layer))}},
		Annotations: map[string]string{"seed": seed},
	}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	require.NoError(tb, err)
	for _, blob := range [][]byte{cfg, layer} {
		w := serveAs(h, http.MethodPost, "/v2/library/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), "", blob)
		require.Equal(tb, http.StatusCreated, w.Code, "%s", w.Body)
	}
	w := serveAs(h, http.MethodPut, "/v2/library/app/manifests/"+ref, ocispec.MediaTypeImageManifest, body)
	require.Equal(tb, http.StatusCreated, w.Code, "%s", w.Body)
	return digest.FromBytes(body).String()
}

// TestManifestCacheWriteThrough: with the caches wired as in `berth serve`, a push, a tag moved, a tag
// deleted and a manifest deleted on this node are visible to the next read.
func TestManifestCacheWriteThrough(t *testing.T) {
	h := servedHandler(t, true)
	// current returns the digest ref names, or "" when it answers 404.
	current := func(ref string) string {
		t.Helper()
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			w := serveAs(h, m, "/v2/library/app/manifests/"+ref, "", nil)
			if w.Code == http.StatusNotFound {
				return ""
			}
			require.Equal(t, http.StatusOK, w.Code, "%s %s: %s", m, ref, w.Body)
			if m == http.MethodHead {
				return w.Header().Get("Docker-Content-Digest")
			}
		}
		return ""
	}
	one := pushServed(t, h, "v1", "one")
	require.Equal(t, one, current("v1"))
	require.Equal(t, one, current(one))

	two := pushServed(t, h, "v1", "two") // re-tag by a push
	require.Equal(t, two, current("v1"))

	w := serveAs(h, http.MethodPut, "/v2/library/app/manifests/"+one+"?tag=v1&tag=stable", ocispec.MediaTypeImageManifest,
		serveAs(h, http.MethodGet, "/v2/library/app/manifests/"+one, "", nil).Body.Bytes()) // re-tag by tag parameters
	require.Equal(t, http.StatusCreated, w.Code, "%s", w.Body)
	require.Equal(t, one, current("v1"))
	require.Equal(t, one, current("stable"))

	w = serveAs(h, http.MethodDelete, "/v2/library/app/manifests/stable", "", nil)
	require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
	require.Empty(t, current("stable"))
	require.Equal(t, one, current("v1"))

	w = serveAs(h, http.MethodDelete, "/v2/library/app/manifests/"+one, "", nil)
	require.Equal(t, http.StatusAccepted, w.Code, "%s", w.Body)
	require.Empty(t, current(one))
	require.Empty(t, current("v1"), "the tags of a deleted manifest go with it")
	require.Equal(t, two, current(two))
}
