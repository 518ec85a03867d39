package registry_test

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
)

// startUpload opens a session in repo and returns its Location.
func (e *env) startUpload(repo string) string {
	e.t.Helper()
	r := e.do(req{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/"})
	require.Equal(e.t, http.StatusAccepted, r.status, "body: %s", r.body)
	loc := r.header.Get("Location")
	require.True(e.t, strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/"), loc)
	id := strings.TrimPrefix(loc, "/v2/"+repo+"/blobs/uploads/")
	require.Equal(e.t, id, r.header.Get("Docker-Upload-UUID"))
	require.Equal(e.t, id, r.header.Get("Blob-Upload-Session-ID"))
	require.Equal(e.t, "0-0", r.header.Get("Range"))
	require.Equal(e.t, "0", r.header.Get("Content-Length"))
	return loc
}

// requireBlob checks that repo serves data under d.
func (e *env) requireBlob(repo string, d digest.Digest, data []byte) {
	e.t.Helper()
	r := e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/blobs/" + d.String()})
	require.Equal(e.t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(e.t, data, r.body)
}

func (e *env) requireNoBlob(repo string, d digest.Digest) {
	e.t.Helper()
	r := e.do(req{method: http.MethodHead, path: "/v2/" + repo + "/blobs/" + d.String()})
	require.Equal(e.t, http.StatusNotFound, r.status)
}

func requireCreated(t *testing.T, r resp, repo string, d digest.Digest) {
	t.Helper()
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "/v2/"+repo+"/blobs/"+d.String(), r.header.Get("Location"))
	require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
	require.Equal(t, "0", r.header.Get("Content-Length"))
}

func TestMonolithicUploads(t *testing.T) {
	e := newEnv(t)
	data := []byte("monolithic blob content")
	sha512d := digest.SHA512.FromBytes(data)
	require.Equal(t, fmt.Sprintf("sha512:%x", sha512.Sum512(data)), sha512d.String())
	for _, tc := range []struct {
		name string
		d    digest.Digest
		body []byte
	}{
		{"sha256", digest.FromBytes(data), data},
		{"sha512", sha512d, data},
		{"empty blob", digest.FromBytes(nil), []byte{}},
	} {
		t.Run("POST "+tc.name, func(t *testing.T) {
			r := e.do(req{method: http.MethodPost, path: "/v2/private/mono/blobs/uploads/?digest=" + tc.d.String(), body: tc.body})
			requireCreated(t, r, "private/mono", tc.d)
			e.requireBlob("private/mono", tc.d, tc.body)
		})
		t.Run("POST then PUT "+tc.name, func(t *testing.T) {
			loc := e.startUpload("private/put")
			r := e.do(req{method: http.MethodPut, path: loc + "?digest=" + tc.d.String(), body: tc.body})
			requireCreated(t, r, "private/put", tc.d)
			e.requireBlob("private/put", tc.d, tc.body)
		})
	}

	t.Run("POST with a wrong digest stores nothing", func(t *testing.T) {
		wrong := digest.FromString("something else")
		r := e.do(req{method: http.MethodPost, path: "/v2/private/bad/blobs/uploads/?digest=" + wrong.String(), body: data})
		requireError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		e.requireNoBlob("private/bad", wrong)
		e.requireNoBlob("private/bad", digest.FromBytes(data))
	})
	t.Run("POST with a malformed digest", func(t *testing.T) {
		r := e.do(req{method: http.MethodPost, path: "/v2/private/bad/blobs/uploads/?digest=sha256:nothex", body: data})
		requireError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
	})
	t.Run("PUT with a wrong digest ends the session", func(t *testing.T) {
		loc := e.startUpload("private/bad")
		wrong := digest.FromString("something else")
		r := e.do(req{method: http.MethodPut, path: loc + "?digest=" + wrong.String(), body: data})
		requireError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		e.requireNoBlob("private/bad", wrong)
		r = e.do(req{method: http.MethodGet, path: loc})
		requireError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	})
	t.Run("PUT without digest keeps the session", func(t *testing.T) {
		loc := e.startUpload("private/bad")
		r := e.do(req{method: http.MethodPut, path: loc, body: data})
		requireError(t, r, http.StatusBadRequest, "DIGEST_INVALID")
		r = e.do(req{method: http.MethodGet, path: loc})
		requireRange(t, r, http.StatusNoContent, "0-0")
	})
}

// requireRange requires r to have status and, as an upload's state, the Range rng.
func requireRange(t *testing.T, r resp, status int, rng string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, rng, r.header.Get("Range"))
}

func TestChunkedUploads(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("chunk-data-"), 100) // 1100 bytes
	d := digest.FromBytes(data)
	repo := "private/chunked"

	t.Run("streamed PATCH then PUT", func(t *testing.T) {
		loc := e.startUpload(repo)
		r := e.do(req{method: http.MethodPatch, path: loc, body: data[:600]})
		requireRange(t, r, http.StatusAccepted, "0-599")
		require.Equal(t, loc, r.header.Get("Location"))
		r = e.do(req{method: http.MethodPatch, path: loc, body: data[600:]})
		requireRange(t, r, http.StatusAccepted, "0-1099")
		r = e.do(req{method: http.MethodGet, path: loc})
		requireRange(t, r, http.StatusNoContent, "0-1099")
		require.Equal(t, loc, r.header.Get("Location"))
		r = e.do(req{method: http.MethodPut, path: loc + "?digest=" + d.String()})
		requireCreated(t, r, repo, d)
		e.requireBlob(repo, d, data)
	})

	t.Run("Content-Range chunks, out of order, last chunk in PUT", func(t *testing.T) {
		const other = "private/chunked2"
		loc := e.startUpload(other)
		patch := func(from, to int) resp {
			return e.do(req{method: http.MethodPatch, path: loc, body: data[from : to+1],
				header: map[string]string{"Content-Range": fmt.Sprintf("%d-%d", from, to), "Content-Type": "application/octet-stream"}})
		}
		r := patch(0, 399)
		requireRange(t, r, http.StatusAccepted, "0-399")

		// Skipping ahead and going back are both refused with the current state.
		for _, bad := range [][2]int{{800, 1099}, {0, 399}, {100, 499}} {
			r = patch(bad[0], bad[1])
			requireError(t, r, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID")
			require.Equal(t, "0-399", r.header.Get("Range"))
			require.Equal(t, loc, r.header.Get("Location"))
		}
		r = e.do(req{method: http.MethodGet, path: loc})
		require.Equal(t, "0-399", r.header.Get("Range"))

		r = patch(400, 799)
		requireRange(t, r, http.StatusAccepted, "0-799")
		r = e.do(req{method: http.MethodPut, path: loc + "?digest=" + d.String(), body: data[800:],
			header: map[string]string{"Content-Range": "800-1099"}})
		requireCreated(t, r, other, d)
		e.requireBlob(other, d, data)
	})

}

// TestUploadSessionErrors: malformed or inconsistent chunks, a cancelled session, and sessions that
// are unknown or belong to another repository.
func TestUploadSessionErrors(t *testing.T) {
	e := newEnv(t)
	d := digest.FromString("never completed")
	repo := "private/chunked"

	t.Run("malformed Content-Range is 416", func(t *testing.T) {
		loc := e.startUpload(repo)
		for _, cr := range []string{"abc", "10-5", "-5", "5"} {
			r := e.do(req{method: http.MethodPatch, path: loc, body: []byte("xx"), header: map[string]string{"Content-Range": cr}})
			requireError(t, r, http.StatusRequestedRangeNotSatisfiable, "RANGE_INVALID")
			require.Equal(t, "0-0", r.header.Get("Range"))
		}
	})

	t.Run("Content-Range and length disagree: nothing appended", func(t *testing.T) {
		loc := e.startUpload(repo)
		r := e.do(req{method: http.MethodPatch, path: loc, body: []byte("12345"), header: map[string]string{"Content-Range": "0-9"}})
		requireError(t, r, http.StatusBadRequest, "SIZE_INVALID")
		r = e.do(req{method: http.MethodGet, path: loc})
		requireRange(t, r, http.StatusNoContent, "0-0")
	})

	t.Run("cancel", func(t *testing.T) {
		loc := e.startUpload(repo)
		r := e.do(req{method: http.MethodPatch, path: loc, body: []byte("first chunk")})
		require.Equal(t, http.StatusAccepted, r.status)
		r = e.do(req{method: http.MethodDelete, path: loc})
		require.Equal(t, http.StatusNoContent, r.status)
		for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete} {
			r = e.do(req{method: m, path: loc + "?digest=" + d.String(), body: []byte("x")})
			requireError(t, r, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		}
	})

	t.Run("unknown and foreign sessions", func(t *testing.T) {
		loc := e.startUpload(repo)
		id := strings.TrimPrefix(loc, "/v2/"+repo+"/blobs/uploads/")
		for _, path := range []string{
			"/v2/" + repo + "/blobs/uploads/0123456789abcdef0123456789abcdef-0123456789abcdef",
			"/v2/" + repo + "/blobs/uploads/nonsense",
			"/v2/private/elsewhere/blobs/uploads/" + id, // a session works only in its repository
			"/v2/other/app/blobs/uploads/" + id,
			"/v2/" + repo + "/blobs/uploads/..",
		} {
			r := e.do(req{method: http.MethodGet, path: path})
			require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, r.status, "%s: %s", path, r.body)
			if r.status == http.StatusNotFound {
				require.Equal(t, "BLOB_UPLOAD_UNKNOWN", errorCode(t, r.body), path)
			}
		}
		r := e.do(req{method: http.MethodGet, path: loc})
		require.Equal(t, http.StatusNoContent, r.status)
	})
}

// TestUploadBodyFailure checks that a request body that breaks off is a client error and leaves the
// session as it was.
func TestUploadBodyFailure(t *testing.T) {
	e := newEnv(t)
	loc := e.startUpload("private/app")
	r := e.do(req{method: http.MethodPatch, path: loc, body: []byte("first")})
	require.Equal(t, http.StatusAccepted, r.status)

	hr := httptest.NewRequest(http.MethodPatch, loc, iotest.TimeoutReader(strings.NewReader(strings.Repeat("x", 100000))))
	hr.SetBasicAuth(auth.AdminUser, adminPassword)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	requireError(t, resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}, http.StatusBadRequest, "BLOB_UPLOAD_INVALID")

	r = e.do(req{method: http.MethodGet, path: loc})
	requireRange(t, r, http.StatusNoContent, "0-4")
}

func TestMount(t *testing.T) {
	e := newEnv(t)
	data := []byte("shared layer")
	d := e.pushBlob("private/src", data)
	missing := digest.FromString("not there")
	for _, tc := range []struct {
		name    string
		target  string
		query   string
		mounted bool
	}{
		{"same project", "private/dst", "?mount=" + d.String() + "&from=private/src", true},
		{"across projects", "other/dst", "?mount=" + d.String() + "&from=private/src", true},
		{"without from, already there", "private/src", "?mount=" + d.String(), true},
		{"without from, in another repository of the project", "private/anon", "?mount=" + d.String(), true},
		{"without from, only in other projects", "public/anon", "?mount=" + d.String(), false},
		{"without from, nowhere", "private/anon2", "?mount=" + missing.String(), false},
		{"blob missing in source", "private/dst2", "?mount=" + missing.String() + "&from=private/src", false},
		{"source project missing", "private/dst3", "?mount=" + d.String() + "&from=nope/src", false},
		{"source repository missing", "private/dst4", "?mount=" + d.String() + "&from=private/none", false},
		{"invalid source name", "private/dst5", "?mount=" + d.String() + "&from=Bad/Name", false},
		{"source name without project", "private/dst6", "?mount=" + d.String() + "&from=src", false},
		{"malformed digest", "private/dst7", "?mount=sha256:zz&from=private/src", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: http.MethodPost, path: "/v2/" + tc.target + "/blobs/uploads/" + tc.query})
			if tc.mounted {
				requireCreated(t, r, tc.target, d)
				e.requireBlob(tc.target, d, data)
				return
			}
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			require.True(t, strings.HasPrefix(r.header.Get("Location"), "/v2/"+tc.target+"/blobs/uploads/"))
			require.NotEmpty(t, r.header.Get("Docker-Upload-UUID"))
		})
	}
	t.Run("anonymous cannot mount into a public project", func(t *testing.T) {
		r := e.do(req{method: http.MethodPost, path: "/v2/public/dst/blobs/uploads/?mount=" + d.String() + "&from=private/src", as: asAnon})
		requireError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	})
}
