package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/storage/s3test"
)

// Two nodes sharing PostgreSQL, one S3 bucket (a real versitygw) and the secret key: a chunked upload
// whose requests alternate between them completes, and the other node serves the blob.
func TestServeTwoNodesShareS3Uploads(t *testing.T) {
	s3srv := s3test.Start(t)
	db := sqltest.Postgres(t)
	shared := []string{"--database-url", db, "--secret-key-file", filepath.Join(t.TempDir(), "secret.key"),
		"--storage-url", "s3://" + s3srv.Bucket(t) + "/berth", "--storage-s3-endpoint", s3srv.Endpoint,
		"--storage-s3-path-style", "--storage-s3-access-key", s3srv.AccessKey, "--storage-s3-secret-key", s3srv.SecretKey,
		"--storage-s3-part-size", "5MiB", "--admin-password", "Shared-Admin-1"}
	a := startServe(t, nil, shared...)
	b := startServe(t, nil, shared...)
	a.call(t, http.MethodPost, "/api/v2.0/projects", map[string]any{"project_name": "p"}, http.StatusCreated)

	data := bytes.Repeat([]byte("berth on s3 "), (11<<20)/12)
	d := digest.FromBytes(data)
	nodes := []*served{a, b}
	send := func(n *served, method, path string, body []byte, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, n.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.SetBasicAuth("admin", n.pass)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	resp := send(a, http.MethodPost, "/v2/p/app/blobs/uploads/", nil, nil) //nolint:bodyclose // closed by t.Cleanup in send
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc := resp.Header.Get("Location")
	const chunk = 3 << 20
	for i, off := 0, 0; off < len(data); i, off = i+1, off+chunk {
		end := min(off+chunk, len(data))
		resp = send(nodes[(i+1)%2], http.MethodPatch, loc, data[off:end], map[string]string{ //nolint:bodyclose // closed by t.Cleanup in send
			"Content-Type": "application/octet-stream", "Content-Range": strconv.Itoa(off) + "-" + strconv.Itoa(end-1)})
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "chunk %d: %s", i, body)
		loc = resp.Header.Get("Location")
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp = send(a, http.MethodPut, loc+sep+"digest="+d.String(), nil, nil) //nolint:bodyclose // closed by t.Cleanup in send
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)

	resp = send(b, http.MethodGet, "/v2/p/app/blobs/"+d.String(), nil, nil) //nolint:bodyclose // closed by t.Cleanup in send
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}
