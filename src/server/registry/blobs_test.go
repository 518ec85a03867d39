package registry_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestBlobGetAndRange(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4096 bytes
	size := len(data)
	d := e.pushBlob("private/app", data)
	path := "/v2/private/app/blobs/" + d.String()

	t.Run("HEAD", func(t *testing.T) {
		r := e.do(req{method: http.MethodHead, path: path})
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, strconv.Itoa(size), r.header.Get("Content-Length"))
		require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
		require.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
		require.Empty(t, r.body)
	})

	for _, tc := range []struct {
		name         string
		rng          string
		ifRange      string
		status       int
		from, to     int // expected body data[from:to]
		contentRange string
	}{
		{"full", "", "", http.StatusOK, 0, size, ""},
		{"500-1499", "bytes=500-1499", "", http.StatusPartialContent, 500, 1500, fmt.Sprintf("bytes 500-1499/%d", size)},
		{"500-", "bytes=500-", "", http.StatusPartialContent, 500, size, fmt.Sprintf("bytes 500-%d/%d", size-1, size)},
		{"suffix -500", "bytes=-500", "", http.StatusPartialContent, size - 500, size, fmt.Sprintf("bytes %d-%d/%d", size-500, size-1, size)},
		{"end clamped", "bytes=2000-50000", "", http.StatusPartialContent, 2000, size, fmt.Sprintf("bytes 2000-%d/%d", size-1, size)},
		{"suffix longer than blob", "bytes=-99999", "", http.StatusPartialContent, 0, size, fmt.Sprintf("bytes 0-%d/%d", size-1, size)},
		{"single byte", "bytes=0-0", "", http.StatusPartialContent, 0, 1, fmt.Sprintf("bytes 0-0/%d", size)},
		{"several ranges are ignored", "bytes=0-1,5-6", "", http.StatusOK, 0, size, ""},
		{"other unit is ignored", "items=0-1", "", http.StatusOK, 0, size, ""},
		{"If-Range with the digest", "bytes=10-19", `"` + d.String() + `"`, http.StatusPartialContent, 10, 20, fmt.Sprintf("bytes 10-19/%d", size)},
		{"If-Range mismatch sends all", "bytes=10-19", `"other"`, http.StatusOK, 0, size, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.rng != "" {
				h["Range"] = tc.rng
			}
			if tc.ifRange != "" {
				h["If-Range"] = tc.ifRange
			}
			r := e.do(req{method: http.MethodGet, path: path, header: h})
			require.Equal(t, tc.status, r.status)
			require.Equal(t, data[tc.from:tc.to], r.body)
			require.Equal(t, strconv.Itoa(tc.to-tc.from), r.header.Get("Content-Length"))
			require.Equal(t, tc.contentRange, r.header.Get("Content-Range"))
			require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
			require.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
		})
	}

	for _, rng := range []string{"bytes=500-0", "bytes=5000-10000", "bytes=4096-", "bytes=-0", "bytes=abc-", "bytes=1-x"} {
		t.Run("unsatisfiable "+rng, func(t *testing.T) {
			r := e.do(req{method: http.MethodGet, path: path, header: map[string]string{"Range": rng}})
			requireError(t, r, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID")
			require.Equal(t, fmt.Sprintf("bytes */%d", size), r.header.Get("Content-Range"))
			require.Empty(t, r.header.Get("Docker-Content-Digest"))
		})
	}
}

func TestBlobErrorsAndDelete(t *testing.T) {
	e := newEnv(t)
	d := e.pushBlob("private/app", []byte("to delete"))
	missing := digest.FromString("missing")
	for _, tc := range []struct {
		name   string
		method string
		path   string
		status int
		code   string
	}{
		{"unknown blob GET", http.MethodGet, "/v2/private/app/blobs/" + missing.String(), http.StatusNotFound, "BLOB_UNKNOWN"},
		{"blob of another repository", http.MethodGet, "/v2/private/other/blobs/" + d.String(), http.StatusNotFound, "BLOB_UNKNOWN"},
		{"malformed digest", http.MethodGet, "/v2/private/app/blobs/sha256:xyz", http.StatusBadRequest, "DIGEST_INVALID"},
		{"unsupported algorithm", http.MethodGet, "/v2/private/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", http.StatusBadRequest, "DIGEST_INVALID"},
		{"delete unknown", http.MethodDelete, "/v2/private/app/blobs/" + missing.String(), http.StatusNotFound, "BLOB_UNKNOWN"},
		{"delete", http.MethodDelete, "/v2/private/app/blobs/" + d.String(), http.StatusAccepted, ""},
		{"gone after delete", http.MethodGet, "/v2/private/app/blobs/" + d.String(), http.StatusNotFound, "BLOB_UNKNOWN"},
		{"delete again", http.MethodDelete, "/v2/private/app/blobs/" + d.String(), http.StatusNotFound, "BLOB_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: tc.method, path: tc.path})
			if tc.code == "" {
				require.Equal(t, tc.status, r.status, "body: %s", r.body)
				require.Equal(t, "0", r.header.Get("Content-Length"))
				return
			}
			requireError(t, r, tc.status, tc.code)
		})
	}
	r := e.do(req{method: http.MethodHead, path: "/v2/private/app/blobs/" + d.String()})
	require.Equal(t, http.StatusNotFound, r.status)
	require.Empty(t, r.body)
}
