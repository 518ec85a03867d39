package upstream_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestBearerTokensAreCachedPerScope(t *testing.T) {
	ctx := context.Background()
	ta := registrytest.NewTokenAuth(t, "test-registry")
	ta.ExpiresIn = 300
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware))
	a := up.PushImage(t, "team/a", "v1")
	up.PushImage(t, "team/b", "v1")

	clk := newClock()
	var logs bytes.Buffer
	ta.SetCredentials("robot", "t0ken-secret")
	c := newClient(t, upstream.Endpoint{URL: up.URL, Username: "robot", Password: "t0ken-secret"},
		upstream.Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	for range 3 {
		_, err := c.ManifestExists(ctx, "team/a", "v1")
		require.NoError(t, err)
		_, err = c.GetManifest(ctx, "team/a", a.Manifest.Digest.String())
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, ta.Requests(), "one token for team/a")

	_, err := c.ListTags(ctx, "team/b")
	require.NoError(t, err)
	require.EqualValues(t, 2, ta.Requests(), "another scope, another token")
	require.Equal(t, []string{"repository:team/a:pull", "repository:team/b:pull"}, ta.Scopes())

	// Near expiry (300 s less the margin) the token is fetched again.
	clk.Advance(295 * time.Second)
	_, err = c.ManifestExists(ctx, "team/a", "v1")
	require.NoError(t, err)
	require.EqualValues(t, 3, ta.Requests())

	// A revoked cached token: the 401 invalidates it and the request is retried once with a new one.
	ta.RevokeAll()
	_, err = c.ManifestExists(ctx, "team/a", "v1")
	require.NoError(t, err)
	require.EqualValues(t, 4, ta.Requests())

	// A token service refusing the credentials.
	ta.SetCredentials("robot", "changed")
	ta.RevokeAll()
	_, err = c.ManifestExists(ctx, "team/a", "v1")
	requireKind(t, err, upstream.Unauthorized)

	require.NotContains(t, logs.String(), "t0ken-secret")
	require.NotContains(t, logs.String(), "Bearer ")
}

func TestBearerDefaultExpiryAndAccessToken(t *testing.T) {
	ctx := context.Background()
	ta := registrytest.NewTokenAuth(t, "ghcr.io")
	ta.AccessTokenField = true // and no expires_in: 60 s by default
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware))
	up.PushImage(t, "org/tool", "v1")
	clk := newClock()
	c := newClient(t, upstream.Endpoint{URL: up.URL, Type: upstream.TypeGHCR}, upstream.Options{Now: clk.Now})

	_, err := c.ManifestExists(ctx, "org/tool", "v1")
	require.NoError(t, err)
	clk.Advance(45 * time.Second)
	_, err = c.ManifestExists(ctx, "org/tool", "v1")
	require.NoError(t, err)
	require.EqualValues(t, 1, ta.Requests())
	clk.Advance(10 * time.Second)
	_, err = c.ManifestExists(ctx, "org/tool", "v1")
	require.NoError(t, err)
	require.EqualValues(t, 2, ta.Requests(), "expired after 60 s less the margin")
}

func TestBearerConcurrentRequests(t *testing.T) {
	ctx := context.Background()
	ta := registrytest.NewTokenAuth(t, "test-registry")
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware))
	img := up.PushImage(t, "team/c", "v1")
	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := c.GetManifest(ctx, "team/c", img.Manifest.Digest.String())
				errs <- err
				return
			}
			_, err := c.ListReferrers(ctx, "team/c", img.Manifest.Digest.String(), "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.LessOrEqual(t, ta.Requests(), int64(16))
}

func TestBasicAuthGGCR(t *testing.T) {
	ctx := context.Background()
	cnt := newCounter()
	up := registrytest.NewGGCR(t, true, registrytest.WithBasicAuth("u", "p"), registrytest.WithWrapper(cnt.Wrap))
	img := up.PushImage(t, "x/y", "v1")
	c := newClient(t, upstream.Endpoint{URL: up.URL, Username: "u", Password: "p"}, upstream.Options{})
	for range 3 {
		_, err := c.GetManifest(ctx, "x/y", img.Manifest.Digest.String())
		require.NoError(t, err)
	}
	require.Equal(t, 4, cnt.Get("manifests"), "one anonymous request learns the challenge, then Basic up front")

	anon := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})
	_, err := anon.GetManifest(ctx, "x/y", "v1")
	e := requireKind(t, err, upstream.Unauthorized)
	require.Equal(t, "UNAUTHORIZED", e.Code)
}

func TestBearerRealmDowngradeRefused(t *testing.T) {
	// An HTTPS registry whose token realm is plain HTTP never gets the credentials.
	ta := registrytest.NewTokenAuth(t, "svc")
	up := registrytest.NewGGCR(t, true, registrytest.WithTLS(), registrytest.WithWrapper(ta.Middleware))
	c := newClient(t, upstream.Endpoint{URL: up.URL, CACertificate: up.CACertificate, Username: "u", Password: "p"}, upstream.Options{})
	err := c.Ping(context.Background())
	requireKind(t, err, upstream.Invalid)
	require.EqualValues(t, 0, ta.Requests())

	anon := newClient(t, upstream.Endpoint{URL: up.URL, CACertificate: up.CACertificate}, upstream.Options{})
	require.NoError(t, anon.Ping(context.Background()), "anonymous tokens over HTTP are fine")
}

func TestChallengeParsing(t *testing.T) {
	// Several challenges in one header, quoted commas, Basic offered alongside Bearer.
	ta := registrytest.NewTokenAuth(t, "svc")
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &headerRewriter{ResponseWriter: w}
			h.ServeHTTP(rec, r)
		})
	}
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware), registrytest.WithWrapper(wrap))
	up.PushImage(t, "a/b", "v1")
	c := newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{})
	_, err := c.ManifestExists(context.Background(), "a/b", "v1")
	require.NoError(t, err)
}

// headerRewriter prefixes a Basic challenge (with a quoted comma) to every Bearer challenge.
type headerRewriter struct{ http.ResponseWriter }

func (h *headerRewriter) WriteHeader(code int) {
	if v := h.Header().Get("WWW-Authenticate"); v != "" {
		h.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm="a, b", %s`, v))
	}
	h.ResponseWriter.WriteHeader(code)
}
