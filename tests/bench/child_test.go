package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBareHandlerServesRoutesFromMemory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "index.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"manifests":[]}`), 0o600))
	blobFile := filepath.Join(dir, "blob.bin")
	require.NoError(t, writeContent(blobFile, NewContent(4, 3000)))
	routesPath := filepath.Join(dir, "routes.json")
	require.NoError(t, writeRoutes(routesPath, []Route{
		{Path: "/v2/p/r/referrers/sha256:1", ContentType: "application/vnd.oci.image.index.v1+json", File: file},
		{Path: "/v2/p/r/blobs/sha256:2", ContentType: "application/octet-stream", Seed: 9, Size: 1000,
			Headers: map[string]string{"Docker-Content-Digest": "sha256:2"}},
		{Path: "/v2/p/r/blobs/sha256:4", ContentType: "application/octet-stream", File: blobFile, FromFile: true,
			Headers: map[string]string{"Docker-Content-Digest": "sha256:4"}},
	}))
	routes, err := loadRoutes(routesPath)
	require.NoError(t, err)
	srv := httptest.NewServer(BareHandler(routes))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, method, path, rng string
		wantStatus              int
		wantBody                []byte
		wantHeader              map[string]string
	}{
		{"file route", http.MethodGet, "/v2/p/r/referrers/sha256:1", "", http.StatusOK, []byte(`{"manifests":[]}`),
			map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json", "Content-Length": "16"}},
		{"generated route", http.MethodGet, "/v2/p/r/blobs/sha256:2", "", http.StatusOK, NewContent(9, 1000).Bytes(),
			map[string]string{"Docker-Content-Digest": "sha256:2", "Content-Length": "1000"}},
		{"head", http.MethodHead, "/v2/p/r/blobs/sha256:2", "", http.StatusOK, []byte{}, map[string]string{"Content-Length": "1000"}},
		{"file route through ServeContent", http.MethodGet, "/v2/p/r/blobs/sha256:4", "", http.StatusOK, NewContent(4, 3000).Bytes(),
			map[string]string{"Docker-Content-Digest": "sha256:4", "Content-Length": "3000", "Content-Type": "application/octet-stream"}},
		{"file route, range (ServeContent)", http.MethodGet, "/v2/p/r/blobs/sha256:4", "bytes=10-19", http.StatusPartialContent, NewContent(4, 3000).Bytes()[10:20],
			map[string]string{"Content-Range": "bytes 10-19/3000"}},
		{"unknown path", http.MethodGet, "/v2/p/r/blobs/sha256:3", "", http.StatusNotFound, nil, nil},
		{"other method", http.MethodDelete, "/v2/p/r/blobs/sha256:2", "", http.StatusNotFound, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			if tt.wantBody != nil {
				require.Equal(t, tt.wantBody, body)
			}
			for k, v := range tt.wantHeader {
				require.Equal(t, v, resp.Header.Get(k), k)
			}
		})
	}
}

func TestListeningLine(t *testing.T) {
	for line, want := range map[string]string{
		`time=2026-12-02T09:32:08Z level=INFO msg="berth listening" version=dev addr=127.0.0.1:44547 data_dir=/x redis=""`: "127.0.0.1:44547",
		`{"time":"x","level":"INFO","msg":"berth listening","version":"dev","addr":"127.0.0.1:555","data_dir":"/x"}`:       "127.0.0.1:555",
		`time=x level=INFO msg=request method=GET path=/x addr=127.0.0.1:1`:                                                "",
	} {
		got := ""
		if m := listeningLine.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		require.Equal(t, want, got, line)
	}
}
