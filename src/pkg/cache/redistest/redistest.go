// Package redistest gives tests the Redis server at BERTH_TEST_REDIS_URL (default
// redis://127.0.0.1:6379/0) and key prefixes of their own, so that tests running at once, in one
// package or several, never see each other's keys.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/berth-registry/berth/src/pkg/cache"
)

// URL is the test server's URL.
func URL() string {
	if u := os.Getenv("BERTH_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a new client of the test server, closed when the test ends. The test fails when the
// server does not answer.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	client, err := cache.NewRedisClient(URL())
	if err != nil {
		t.Fatalf("redis client for %s: %v", URL(), err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the tests need Redis at %s (BERTH_TEST_REDIS_URL): %v", URL(), err)
	}
	return client
}

// Prefix returns a key prefix of this test's own, "berth-test:<component>:<random>:", and deletes
// the keys under it through client when the test ends (before client is closed, when Client made it in
// this test first).
func Prefix(t testing.TB, client redis.UniversalClient, component string) string {
	prefix := "berth-test:" + component + ":" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := Keys(ctx, client, prefix)
		if err == nil && len(keys) > 0 {
			err = client.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("cleaning up %s: %v", prefix, err)
		}
	})
	return prefix
}

// New returns a Client of the test server and a Prefix of this test's own on it.
func New(t testing.TB, component string) (redis.UniversalClient, string) {
	t.Helper()
	client := Client(t)
	return client, Prefix(t, client, component)
}

// Keys returns the keys under prefix (SCAN, never KEYS).
func Keys(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}
