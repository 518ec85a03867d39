package registry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/server/mirror"
	"github.com/berth-registry/berth/src/server/registry"
)

// TestBearerChallenge checks the challenge with a token service configured: Bearer, with the realm
// (given, or derived from the request), the service and the scope each request needs; Basic
// credentials are still accepted.
func TestBearerChallenge(t *testing.T) {
	derived := newEnv(t, envOpts{handler: registry.Options{Bearer: &registry.BearerChallenge{RealmPath: "/service/token", Service: "berth"}}})
	fixed := newEnv(t, envOpts{handler: registry.Options{Bearer: &registry.BearerChallenge{Realm: "https://reg.example/service/token", Service: "svc"}}})
	base := `Bearer realm="` + derived.srv.URL + `/service/token",service="berth"`
	for _, tc := range []struct {
		name, method, path, want string
	}{
		{"ping", http.MethodGet, "/v2/", base},
		{"pull", http.MethodGet, "/v2/private/app/manifests/v1", base + `,scope="repository:private/app:pull"`},
		{"head", http.MethodHead, "/v2/private/app/blobs/sha256:" + zeros, base + `,scope="repository:private/app:pull"`},
		{"push", http.MethodPost, "/v2/public/app/blobs/uploads/", base + `,scope="repository:public/app:pull,push"`},
		{"delete", http.MethodDelete, "/v2/public/app/manifests/v1", base + `,scope="repository:public/app:delete"`},
		{"catalog", http.MethodGet, "/v2/_catalog", base + `,scope="registry:catalog:*"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := derived.do(req{method: tc.method, path: tc.path, as: asAnon})
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Equal(t, tc.want, r.header.Get("WWW-Authenticate"))
		})
	}
	r := fixed.do(req{method: http.MethodGet, path: "/v2/", as: asAnon})
	require.Equal(t, `Bearer realm="https://reg.example/service/token",service="svc"`, r.header.Get("WWW-Authenticate"))
	r = fixed.do(req{method: http.MethodGet, path: "/v2/", as: asAdmin})
	require.Equal(t, http.StatusOK, r.status, "Basic is still accepted")
	r = fixed.do(req{method: http.MethodGet, path: "/v2/private/app/tags/list", as: asWrongPassword})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.header.Get("WWW-Authenticate"), `scope="repository:private/app:pull"`)
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// nsRouter sends every request with ns=docker.io to project private.
type nsRouter struct{}

func (nsRouter) Route(_ context.Context, ns, name string) (mirror.Route, error) {
	if ns == "docker.io" {
		return mirror.Route{Project: "private", Path: name, Namespace: ns}, nil
	}
	return mirror.Route{}, nil
}

// TestBearerChallengeMirror: a request the mirror router sends to a project's repository is
// challenged for that repository too, since a token must name the repository it reads.
func TestBearerChallengeMirror(t *testing.T) {
	e := newEnv(t, envOpts{handler: registry.Options{Mirror: nsRouter{}, Bearer: &registry.BearerChallenge{Realm: "http://r/t", Service: "berth"}}})
	r := e.do(req{method: http.MethodGet, path: "/v2/library/app/manifests/v1?ns=docker.io", as: asAnon})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, `Bearer realm="http://r/t",service="berth",scope="repository:library/app:pull repository:private/library/app:pull"`,
		r.header.Get("WWW-Authenticate"))
	r = e.do(req{method: http.MethodGet, path: "/v2/library/app/manifests/v1?ns=docker.io", as: asAdmin})
	require.Equal(t, http.StatusNotFound, r.status, "Basic still reaches the routed repository")
}
