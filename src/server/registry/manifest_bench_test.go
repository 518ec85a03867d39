package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/storage"
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
		h, digest := manifestBenchHandler(b, cached)
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

func manifestBenchHandler(b *testing.B, cached bool) (http.Handler, string) {
	ctx := context.Background()
	dir := b.TempDir()
	fs, err := storage.NewFS(filepath.Join(dir, "storage"))
	require.NoError(b, err)
	ms, err := sqlstore.Open(ctx, filepath.Join(dir, "meta.db"))
	require.NoError(b, err)
	b.Cleanup(func() { _ = ms.Close() })
	_, err = ms.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(b, err)
	var artifacts meta.ArtifactStore = ms
	if cached {
		artifacts = artifactcache.New(ms, time.Hour)
	}
	opts := local.Options{ManifestCacheBytes: -1}
	if cached {
		opts.ManifestCacheBytes = 0 // the default
	}
	svc := local.New(fs, artifacts, ms, opts)
	b.Cleanup(func() { _ = svc.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := registry.New(svc, projectcache.New(ms, time.Hour).ReadOnly(), auth.NewAuthenticator(adminPassword), log, registry.Options{})

	// push sends one request as admin and requires a 201.
	push := func(method, path, ct string, body []byte) {
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.SetBasicAuth(auth.AdminUser, adminPassword)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(b, http.StatusCreated, w.Code, "%s %s: %s", method, path, w.Body)
	}
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux"}`), bytes.Repeat([]byte("l"), 1024)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer),
			Size: int64(len(layer))}},
		Annotations: map[string]string{"org.opencontainers.image.created": "2026-12-02T00:00:00Z"},
	}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	require.NoError(b, err)
	for _, blob := range [][]byte{cfg, layer} {
		push(http.MethodPost, "/v2/library/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), "", blob)
	}
	push(http.MethodPut, "/v2/library/app/manifests/v1", ocispec.MediaTypeImageManifest, body)
	return h, digest.FromBytes(body).String()
}
