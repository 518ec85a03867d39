package registry_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// routeCase is a request to a route as a kind of caller (asAdmin, asAnon, ...) and the answer expected:
// the status, and the OCI error code ("" when the request succeeds).
type routeCase struct {
	name   string
	method string
	path   string
	as     int
	status int
	code   string
}

// requireBasicChallenge checks that r challenges the client for Basic credentials.
func requireBasicChallenge(t *testing.T, r resp) {
	t.Helper()
	require.Equal(t, `Basic realm="berth"`, r.header.Get("WWW-Authenticate"))
}

func TestBase(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []routeCase{
		{"admin", http.MethodGet, "/v2/", asAdmin, http.StatusOK, ""},
		{"admin HEAD", http.MethodHead, "/v2/", asAdmin, http.StatusOK, ""},
		{"anonymous gets the challenge", http.MethodGet, "/v2/", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"wrong password", http.MethodGet, "/v2/", asWrongPassword, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"method not allowed", http.MethodPost, "/v2/", asAdmin, http.StatusMethodNotAllowed, "UNSUPPORTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: tc.method, path: tc.path, as: tc.as})
			require.Equal(t, "registry/2.0", r.header.Get("Docker-Distribution-API-Version"))
			switch {
			case tc.status == http.StatusUnauthorized:
				requireError(t, r, tc.status, tc.code)
				requireBasicChallenge(t, r)
			case tc.code != "":
				requireError(t, r, tc.status, tc.code)
			default:
				require.Equal(t, tc.status, r.status)
				require.Equal(t, "application/json", r.header.Get("Content-Type"))
				require.Equal(t, "2", r.header.Get("Content-Length"))
				if tc.method == http.MethodGet {
					require.JSONEq(t, `{}`, string(r.body))
				}
			}
		})
	}
}

// TestAuthorization walks the project and permission rules for every kind of route.
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	pub := e.pushImage("public/app", "v1", imageOpts{seed: "pub"})
	priv := e.pushImage("private/app", "v1", imageOpts{seed: "priv"})
	blob := e.pushBlob("public/app", []byte("public blob"))
	for _, tc := range []routeCase{
		// Reads of a public project need no credentials.
		{"anon pulls public manifest", http.MethodGet, "/v2/public/app/manifests/v1", asAnon, http.StatusOK, ""},
		{"anon heads public manifest", http.MethodHead, "/v2/public/app/manifests/" + pub.digest.String(), asAnon, http.StatusOK, ""},
		{"anon pulls public blob", http.MethodGet, "/v2/public/app/blobs/" + blob.String(), asAnon, http.StatusOK, ""},
		{"anon lists public tags", http.MethodGet, "/v2/public/app/tags/list", asAnon, http.StatusOK, ""},
		{"anon lists public referrers", http.MethodGet, "/v2/public/app/referrers/" + pub.digest.String(), asAnon, http.StatusOK, ""},
		// Writes and deletes of a public project need credentials.
		{"anon push to public", http.MethodPut, "/v2/public/app/manifests/v2", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"anon upload to public", http.MethodPost, "/v2/public/app/blobs/uploads/", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"anon delete in public", http.MethodDelete, "/v2/public/app/manifests/v1", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"anon blob delete in public", http.MethodDelete, "/v2/public/app/blobs/" + blob.String(), asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		// A private project is invisible without credentials.
		{"anon pulls private", http.MethodGet, "/v2/private/app/manifests/" + priv.digest.String(), asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"anon tags private", http.MethodGet, "/v2/private/app/tags/list", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"wrong password on public", http.MethodGet, "/v2/public/app/manifests/v1", asWrongPassword, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"empty Basic credentials are anonymous", http.MethodGet, "/v2/public/app/manifests/v1", asEmptyBasic, http.StatusOK, ""},
		{"empty Basic credentials on private", http.MethodGet, "/v2/private/app/tags/list", asEmptyBasic, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"admin pulls private", http.MethodGet, "/v2/private/app/manifests/v1", asAdmin, http.StatusOK, ""},
		// A missing project: 404 for an authenticated caller, 401 for an anonymous one.
		{"admin missing project", http.MethodGet, "/v2/nope/app/manifests/v1", asAdmin, http.StatusNotFound, "NAME_UNKNOWN"},
		{"admin missing project referrers", http.MethodGet, "/v2/nope/app/referrers/" + pub.digest.String(), asAdmin, http.StatusNotFound, "NAME_UNKNOWN"},
		{"anon missing project", http.MethodGet, "/v2/nope/app/manifests/v1", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		// The catalog is for administrators.
		{"anon catalog", http.MethodGet, "/v2/_catalog", asAnon, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"admin catalog", http.MethodGet, "/v2/_catalog", asAdmin, http.StatusOK, ""},
		// Malformed names and routes are client errors whoever asks.
		{"name without project", http.MethodGet, "/v2/app/manifests/v1", asAdmin, http.StatusBadRequest, "NAME_INVALID"},
		{"upper-case name", http.MethodGet, "/v2/public/App/manifests/v1", asAnon, http.StatusBadRequest, "NAME_INVALID"},
		{"unknown route", http.MethodGet, "/v2/public/app/nothing/here", asAdmin, http.StatusNotFound, "NOT_FOUND"},
		{"method not allowed", http.MethodPost, "/v2/public/app/manifests/v1", asAdmin, http.StatusMethodNotAllowed, "UNSUPPORTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: tc.method, path: tc.path, as: tc.as,
				header: map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}})
			require.Equal(t, "registry/2.0", r.header.Get("Docker-Distribution-API-Version"))
			if tc.code == "" {
				require.Equal(t, tc.status, r.status, "body: %s", r.body)
				return
			}
			if tc.method == http.MethodHead {
				require.Equal(t, tc.status, r.status)
				require.Empty(t, r.body)
				return
			}
			requireError(t, r, tc.status, tc.code)
			if tc.status == http.StatusUnauthorized {
				requireBasicChallenge(t, r)
			}
			if tc.status == http.StatusMethodNotAllowed {
				require.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}
}

// TestErrorHeadHasNoBody checks that HEAD errors carry the status and headers only.
func TestErrorHeadHasNoBody(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: http.MethodHead, path: "/v2/private/app/manifests/missing"})
	require.Equal(t, http.StatusNotFound, r.status)
	require.Empty(t, r.body)
	r = e.do(req{method: http.MethodHead, path: "/v2/private/app/manifests/missing", as: asAnon})
	require.Equal(t, http.StatusUnauthorized, r.status)
	requireBasicChallenge(t, r)
}
