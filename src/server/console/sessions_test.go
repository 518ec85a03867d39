package console

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

// TestSessionsSharedAcrossNodes runs two console handlers, each with a store of its own over one
// database (two Berth nodes, or one Berth before and after a restart), with sessions in the database
// (SQLite, PostgreSQL) or in Redis: a login through one node is accepted by the other, with its CSRF
// token, and a logout through either ends it on both. The stores hold a hash of the session ID only.
func TestSessionsSharedAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (a, b meta.Store, sa, sb SessionStore, hasKey func(key string) bool)
	}{
		{"database SQLite", func(t *testing.T) (meta.Store, meta.Store, SessionStore, SessionStore, func(string) bool) {
			return twoDBNodes(t, filepath.Join(t.TempDir(), "berth.db"))
		}},
		{"database PostgreSQL", func(t *testing.T) (meta.Store, meta.Store, SessionStore, SessionStore, func(string) bool) {
			return twoDBNodes(t, sqltest.Postgres(t))
		}},
		{"Redis", func(t *testing.T) (meta.Store, meta.Store, SessionStore, SessionStore, func(string) bool) {
			a, b, _, _, _ := twoDBNodes(t, filepath.Join(t.TempDir(), "berth.db"))
			kvA, kvB, has := twoRedisCaches(t)
			return a, b, NewCacheSessions(kvA), NewCacheSessions(kvB), has
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeA, storeB, sessA, sessB, hasKey := tc.open(t)
			nodeA, nodeB := newNode(t, storeA, sessA), newNode(t, storeB, sessB)
			a := nodeA.browser()
			csrf := a.login()
			cookies := a.c.Jar.Cookies(mustURL(t, nodeA.srv.URL))
			require.Len(t, cookies, 1)
			id := cookies[0].Value
			require.True(t, hasKey(sessionKey(id)), "stored under the hash of the ID")
			require.False(t, hasKey(id), "the ID itself is not a key")

			b := nodeB.browser()
			b.c.Jar.SetCookies(mustURL(t, nodeB.srv.URL), cookies)
			_, body, _ := b.get("/projects")
			require.Contains(t, body, "Signed in as <strong>admin</strong>", "the other node knows the session")
			require.Contains(t, body, `name="csrf" value="`+csrf+`"`, "and its CSRF token")
			status, _, _ := b.post("/projects", url.Values{"name": {"from-b"}, "csrf": {csrf}})
			require.Equal(t, http.StatusSeeOther, status, "a change through the other node with the token")
			status, _, _ = b.post("/projects", url.Values{"name": {"forged"}, "csrf": {"forged"}})
			require.Equal(t, http.StatusForbidden, status)

			status, _, _ = b.post("/logout", url.Values{"csrf": {csrf}})
			require.Equal(t, http.StatusSeeOther, status)
			_, body, _ = a.get("/projects")
			require.NotContains(t, body, "Signed in as", "a logout through one node ends the session on both")
			require.False(t, hasKey(sessionKey(id)))
		})
	}
}

// twoDBNodes opens two stores on one database, with sessions in it; hasKey looks a key up in the first.
func twoDBNodes(t *testing.T, dbURL string) (a, b meta.Store, sa, sb SessionStore, hasKey func(string) bool) {
	t.Helper()
	for _, s := range []*meta.Store{&a, &b} {
		st, err := sqlstore.Open(context.Background(), dbURL)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
		*s = st
	}
	return a, b, a, b, func(key string) bool {
		_, err := a.GetSession(context.Background(), key, time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
		return err == nil
	}
}

// twoRedisCaches returns two clients of the test Redis (BERTH_TEST_REDIS_URL, default 127.0.0.1:6379)
// under one key prefix of this test, removed at the end; hasKey tells whether a session key is stored.
func twoRedisCaches(t *testing.T) (a, b cache.Cache, hasKey func(string) bool) {
	t.Helper()
	u := os.Getenv("BERTH_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	prefix := "berth-test:console:" + rand.Text() + ":"
	ra, err := cache.NewRedisFromURL(u, prefix)
	require.NoError(t, err)
	require.NoError(t, ra.Ping(t.Context()), "the test needs Redis at %s (BERTH_TEST_REDIS_URL)", u)
	rb, err := cache.NewRedisFromURL(u, prefix)
	require.NoError(t, err)
	client, err := cache.NewRedisClient(u)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := client.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = client.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("cleaning up %s: %v", prefix, err)
		}
		_, _, _ = ra.Close(), rb.Close(), client.Close()
	})
	return ra, rb, func(key string) bool {
		keys, err := client.Keys(context.Background(), prefix+"*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			if strings.HasSuffix(k, ":console-session:"+key) {
				return true
			}
		}
		return false
	}
}
