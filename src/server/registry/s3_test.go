package registry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/storage/s3test"
)

// A chunked upload onto S3 (parts cross S3's part boundary) and a GET answered with a 307 to a presigned
// URL of the object store, which serves the bytes (and a Range) itself.
func TestS3ChunkedUploadAndRedirect(t *testing.T) {
	srv := s3test.Start(t)
	blobs, err := storage.NewS3(context.Background(), storage.S3Options{
		Bucket: srv.Bucket(t), Prefix: "berth", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, TempDir: t.TempDir(), PartSize: 5 << 20,
		Redirect: true, RedirectExpiry: time.Minute,
	})
	require.NoError(t, err)
	e := newEnv(t, envOpts{blobs: blobs})

	data := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16+1000)
	d := digest.FromBytes(data)
	r := e.do(req{method: http.MethodPost, path: "/v2/private/big/blobs/uploads/"})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	loc := r.header.Get("Location")
	for off := 0; off < len(data); off += 2 << 20 {
		end := min(off+2<<20, len(data))
		r = e.do(req{method: http.MethodPatch, path: loc, body: data[off:end], header: map[string]string{
			"Content-Type": "application/octet-stream", "Content-Range": strconv.Itoa(off) + "-" + strconv.Itoa(end-1),
		}})
		require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
		loc = r.header.Get("Location")
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r = e.do(req{method: http.MethodPut, path: loc + sep + "digest=" + d.String()})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v2/private/big/blobs/"+d.String(), nil)
	require.NoError(t, err)
	get.SetBasicAuth(auth.AdminUser, adminPassword)
	res, err := noFollow.Do(get)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, res.StatusCode)
	require.Equal(t, d.String(), res.Header.Get("Docker-Content-Digest"))
	u := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(u, srv.Endpoint+"/"), u)

	res, err = http.Get(u)
	require.NoError(t, err)
	got, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, bytes.Equal(data, got))

	// HEAD is answered here, with the size.
	r = e.do(req{method: http.MethodHead, path: "/v2/private/big/blobs/" + d.String()})
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, strconv.Itoa(len(data)), r.header.Get("Content-Length"))
}
