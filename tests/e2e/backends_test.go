package e2e

import (
	"context"
	"database/sql"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver for database/sql: creates and drops the test's database
	"github.com/stretchr/testify/require"
)

// TestPostgresRedisRestart runs berth on PostgreSQL (a fresh database) and Redis, pushes an artifact with
// a referrer, restarts the server on the same data, and checks everything is still served.
func TestPostgresRedisRestart(t *testing.T) {
	t.Parallel()
	pgURL := freshPostgresDatabase(t)
	redisURL := envOr("BERTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	requireReachable(t, "Redis (BERTH_TEST_REDIS_URL)", redisURL)

	srv := startServer(t, serverConfig{args: []string{"--database-url", pgURL, "--redis-url", redisURL}})
	srv.createProject(t, "durable", false)
	c := newClients(t, srv, "oras", "crane")
	c.loginOras()
	repo := srv.Host + "/durable/app"
	payload := []byte("survives a restart\n")
	c.writeFile("data.txt", payload)
	pushed := c.orasPush(repo+":v1", typeApp, "data.txt:text/plain")
	subject := repo + "@" + pushed.Digest
	c.writeFile("sbom.json", []byte(`{"components":[]}`))
	sbom := c.orasAttach(subject, typeSBOM, "sbom.json:application/json")
	require.Len(t, c.discover(subject, ""), 1)

	srv.restart(t) // new port: log in again
	c = newClients(t, srv, "oras", "crane")
	c.loginOras()
	c.loginCrane()
	repo = srv.Host + "/durable/app"
	subject = repo + "@" + pushed.Digest

	refs := c.discover(subject, "")
	require.Len(t, refs, 1, "referrers after restart: %+v", refs)
	require.Equal(t, sbom.Digest, refs[0].Digest)
	c.must("oras", "pull", "--plain-http", "-o", "out", repo+":v1")
	require.Equal(t, payload, c.readFile("out/data.txt"))
	require.Equal(t, []string{"v1"}, c.tags(repo))
	// the project kept its visibility
	res := srv.do(t, http.MethodGet, "/v2/durable/app/tags/list", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.Status, "private project after restart, anonymous:\n%s", res)
}

// TestSQLiteRestart: the default embedded database keeps projects, tags and referrers across a restart.
func TestSQLiteRestart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "kept", true)
	c := newClients(t, srv, "oras")
	c.loginOras()
	c.writeFile("data.txt", []byte("kept\n"))
	pushed := c.orasPush(srv.Host+"/kept/app:v1", typeApp, "data.txt:text/plain")
	sig := c.orasAttach(srv.Host+"/kept/app@"+pushed.Digest, typeSig, "data.txt:text/plain")

	srv.restart(t)
	c = newClients(t, srv, "oras")
	refs := c.discover(srv.Host+"/kept/app@"+pushed.Digest, "") // anonymous: the project is still public
	require.Len(t, refs, 1, "referrers after restart: %+v", refs)
	require.Equal(t, sig.Digest, refs[0].Digest)
	c.must("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/kept/app:v1")
}

// TestVersion: `berth version` prints the version stamped at build time.
func TestVersion(t *testing.T) {
	t.Parallel()
	bin := berthBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	require.NoError(t, err, "berth version:\n%s", out)
	require.True(t, strings.HasPrefix(string(out), "berth "), "berth version printed %q", out)
	require.Greater(t, len(strings.TrimSpace(strings.TrimPrefix(string(out), "berth "))), 0, "empty version: %q", out)
}

// freshPostgresDatabase creates an empty database on the server of BERTH_TEST_POSTGRES_URL for this test
// (dropped at the end) and returns its URL.
func freshPostgresDatabase(t *testing.T) string {
	t.Helper()
	base := envOr("BERTH_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	requireReachable(t, "PostgreSQL (BERTH_TEST_POSTGRES_URL)", base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sql.Open("postgres", base)
	require.NoError(t, err)
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		missing(t, "PostgreSQL at %s: %v", base, err)
	}
	name := "berth_e2e_" + randomHex(t, 6)
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err, "create database %s", name)
	// Registered before the server starts, so it runs after the server has stopped.
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

// requireReachable reports the service missing when nothing accepts TCP connections at rawURL's host.
func requireReachable(t *testing.T, what, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err, "%s: bad URL %q", what, rawURL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		missing(t, "%s at %s not reachable: %v (start it with `make services`)", what, u.Host, err)
		return
	}
	_ = conn.Close()
}
