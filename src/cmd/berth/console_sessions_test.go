package main

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache/redistest"
	"github.com/berth-registry/berth/src/pkg/config"
)

// serveOn runs serveConfig over dataDir with args until the returned stop is called.
func serveOn(t *testing.T, dataDir, pass string, args ...string) (baseURL string, stop func()) {
	t.Helper()
	base := []string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-password", pass, "--log-level", "warn"}
	cfg, err := config.Load(append(base, args...), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addr, done := make(chan net.Addr, 1), make(chan error, 1)
	go func() { done <- serveConfig(ctx, cfg, io.Discard, hooks{listening: func(a net.Addr) { addr <- a }}) }()
	select {
	case a := <-addr:
		baseURL = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve ended before listening: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	return baseURL, stop
}

// consoleLogin logs in through the console's form and returns the session cookie.
func consoleLogin(t *testing.T, baseURL, pass string) *http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(baseURL+"/login", url.Values{"username": {"admin"}, "password": {pass}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, ck := range resp.Cookies() {
		if ck.Name == "berth_session" {
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// signedIn tells whether the console at baseURL knows the session of cookie.
func signedIn(t *testing.T, baseURL string, cookie *http.Cookie) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, baseURL+"/projects", nil)
	require.NoError(t, err)
	req.AddCookie(cookie)
	return strings.Contains(string(roundTrip(t, req).body), "Signed in as <strong>admin</strong>")
}

// Without Redis, serve keeps console sessions in the database: a login survives a restart.
func TestServeConsoleSessionSurvivesRestart(t *testing.T) {
	dir, pass := t.TempDir(), "Test-"+rand.Text()[:12]
	u, stop := serveOn(t, dir, pass)
	cookie := consoleLogin(t, u, pass)
	require.True(t, signedIn(t, u, cookie))
	stop()
	u, _ = serveOn(t, dir, pass)
	require.True(t, signedIn(t, u, cookie), "the session outlived the restart")
}

// With Redis, serve keeps console sessions there: a login on one node is known to another node with a
// database of its own, under the configured prefix, with the session's lifetime as TTL.
func TestServeConsoleSessionsInRedis(t *testing.T) {
	redisURL := redistest.URL()
	client, prefix := redistest.New(t, "serve-console")
	pass := "Test-" + rand.Text()[:12]
	a, _ := serveOn(t, t.TempDir(), pass, "--redis-url", redisURL, "--redis-key-prefix", prefix)
	b, _ := serveOn(t, t.TempDir(), pass, "--redis-url", redisURL, "--redis-key-prefix", prefix)
	cookie := consoleLogin(t, a, pass)
	require.True(t, signedIn(t, b, cookie), "the other node knows the session")
	keys, err := client.Keys(t.Context(), prefix+"val:console-session:*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NotContains(t, keys[0], cookie.Value, "stored under a hash of the ID")
	ttl, err := client.PTTL(t.Context(), keys[0]).Result()
	require.NoError(t, err)
	require.InDelta(t, (8 * time.Hour).Seconds(), ttl.Seconds(), 60, "TTL = the session's lifetime")
}
