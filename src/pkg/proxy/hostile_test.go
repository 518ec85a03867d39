package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
	berthhttp "github.com/berth-registry/berth/src/server/registry"
)

// The trust boundary seen from Berth's clients: a hostile upstream (registrytest.Hostile) behind the
// real pull-through stack.

const (
	hostileUser = "berth-user"
	hostilePass = "upstream-secret"
)

// newHostileEnv is newEnv over a hostile upstream that demands Basic credentials, with the upstream
// clients built with opts.
func newHostileEnv(t *testing.T, opts upstream.Options) (*env, *registrytest.Hostile) {
	t.Helper()
	h := registrytest.NewHostile(t)
	h.Registry.RequireBasic(hostileUser, hostilePass)
	e := newEnv(t, &upServer{Server: &registrytest.Server{URL: h.Registry.URL}}, registryRow{Username: hostileUser, Password: hostilePass})
	log := slog.New(slog.DiscardHandler)
	e.svc = proxy.New(e.local, proxy.NewClients(e.store, e.box, opts), e.fs, e.store, log, proxy.Options{})
	e.srv = httptest.NewServer(berthhttp.New(e.svc, e.store, auth.NewAuthenticator(adminPassword), log, berthhttp.Options{}))
	t.Cleanup(e.srv.Close)
	svc := e.svc
	t.Cleanup(func() { _ = svc.WaitFills(context.Background()) })
	return e, h
}

// Point (b), end to end: a blob redirect to an internal address from a registry that counts as public
// is a 502 for the client; nothing of the internal response is streamed or stored, and the internal
// listener is never reached.
func TestHostileBlobRedirectToInternalEndToEnd(t *testing.T) {
	e, h := newHostileEnv(t, upstream.Options{RegistryAddressClass: upstream.AddressPublic})
	secret := []byte("internal service response")
	d := digest.FromBytes(secret)
	h.ThirdParty.Handle("/internal", registrytest.Body("application/octet-stream", secret))
	h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/internal"))

	r := e.get("r/blobs/" + d.String())
	requireCode(t, r, http.StatusBadGateway, "UPSTREAM_INVALID")
	require.NotContains(t, string(r.body), "internal service")
	require.NotContains(t, string(r.body), "127.0.0.1", "no upstream address in the client's answer")
	require.Empty(t, h.ThirdParty.Requests())
	require.NotEmpty(t, h.Registry.Authorized())
	e.requireNotStored(d)
}

// Point (e), end to end: a blob redirected to an allowed CDN reaches the client and is stored, and the
// CDN never sees the upstream's credentials.
func TestHostileBlobRedirectToCDNEndToEnd(t *testing.T) {
	e, h := newHostileEnv(t, upstream.Options{})
	blob := randomBytes(64 << 10)
	d := digest.FromBytes(blob)
	h.ThirdParty.Handle("/cdn/blob", registrytest.Body("application/octet-stream", blob))
	h.Registry.Handle("/v2/r/blobs/"+d.String(), registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/cdn/blob"))

	requireOK(t, e.get("r/blobs/"+d.String()), blob)
	e.requireStored(d, blob)
	require.NotEmpty(t, h.Registry.Authorized())
	require.Len(t, h.ThirdParty.Requests(), 1)
	require.Empty(t, h.ThirdParty.Authorized(), "credentials reached the CDN")
}

// Point (a), end to end: tags redirected to a third party are a 502 (no local tags to fall back on) and
// the third party is never contacted.
func TestHostileTagsRedirectEndToEnd(t *testing.T) {
	e, h := newHostileEnv(t, upstream.Options{})
	h.ThirdParty.Handle("/tags", registrytest.Body("application/json", []byte(`{"tags":["evil"]}`), "Link", registrytest.Link("/tags2")))
	h.Registry.Handle("/v2/r/tags/list", registrytest.Redirect(http.StatusTemporaryRedirect, h.ThirdParty.URL+"/tags"))
	r := e.get("r/tags/list")
	require.NotContains(t, string(r.body), "evil")
	requireCode(t, r, http.StatusBadGateway, "UPSTREAM_INVALID")
	require.Empty(t, h.ThirdParty.Requests())
}

// A manifest redirected to a third party is a 502, the third party is never contacted, and nothing is
// stored: the tag stays unknown locally.
func TestHostileManifestRedirectEndToEnd(t *testing.T) {
	e, h := newHostileEnv(t, upstream.Options{})
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	h.ThirdParty.Handle("/m", registrytest.Body("application/vnd.oci.image.index.v1+json", body))
	h.Registry.Handle("/v2/r/manifests/latest", registrytest.Redirect(http.StatusFound, h.ThirdParty.URL+"/m"))
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		r := e.do(method, "r/manifests/latest", "", nil)
		require.Equal(t, http.StatusBadGateway, r.status, "%s: %s", method, r.body)
	}
	requireCode(t, e.get("r/manifests/latest"), http.StatusBadGateway, "UPSTREAM_INVALID")
	require.Empty(t, h.ThirdParty.Requests())
	_, err := e.local.GetManifest(context.Background(), e.repo("r"), "latest")
	require.Error(t, err, "nothing stored")
}

// An unreachable upstream is a 503 whose message names no address and no dial error; the cause is
// logged only.
func TestUnreachableUpstreamMessage(t *testing.T) {
	e, _ := newHostileEnv(t, upstream.Options{})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections
	reg, err := e.store.GetRegistry(context.Background(), e.project.RegistryID)
	require.NoError(t, err)
	reg.URL = closed.URL
	require.NoError(t, e.store.UpdateRegistry(context.Background(), reg))
	e.svc = proxy.New(e.local, proxy.NewClients(e.store, e.box, upstream.Options{}), e.fs, e.store, slog.New(slog.DiscardHandler), proxy.Options{})
	e.srv = httptest.NewServer(berthhttp.New(e.svc, e.store, auth.NewAuthenticator(adminPassword), slog.New(slog.DiscardHandler), berthhttp.Options{}))
	t.Cleanup(e.srv.Close)

	for _, path := range []string{"r/manifests/latest", "r/blobs/" + digest.FromString("x").String(), "r/tags/list"} {
		r := e.get(path)
		requireCode(t, r, http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
		host := strings.TrimPrefix(closed.URL, "http://")
		for _, leak := range []string{host, "127.0.0.1", "dial", "connection refused"} {
			require.NotContains(t, string(r.body), leak, "%s: %s", path, r.body)
		}
	}
}
