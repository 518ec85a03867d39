package cache_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/cache/cachetest"
	"github.com/berth-registry/berth/src/pkg/cache/redistest"
)

// advanceRedis moves time forward for every key under prefix by d: keys whose remaining TTL is at most
// d are deleted, the others get d less to live. That is what a wait of d would do, without waiting.
func advanceRedis(t *testing.T, client redis.UniversalClient, prefix string) func(time.Duration) {
	return func(d time.Duration) {
		ctx := t.Context()
		keys, err := redistest.Keys(ctx, client, prefix)
		require.NoError(t, err)
		for _, k := range keys {
			ttl, err := client.PTTL(ctx, k).Result()
			require.NoError(t, err)
			switch {
			case ttl < 0: // -1: no TTL (never set by the cache), -2: gone meanwhile
			case ttl <= d:
				require.NoError(t, client.Del(ctx, k).Err())
			default:
				require.NoError(t, client.PExpire(ctx, k, ttl-d).Err())
			}
		}
	}
}

func TestRedisSuite(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) (cache.Cache, func(time.Duration)) {
		client, prefix := redistest.New(t, "cache")
		return cache.NewRedis(client, prefix), advanceRedis(t, client, prefix)
	})
}

func TestRedisKeysAndTTL(t *testing.T) {
	ctx := t.Context()
	client, prefix := redistest.New(t, "cache")
	c := cache.NewRedis(client, prefix)

	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	ttl, err := client.PTTL(ctx, prefix+"val:k").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "the TTL reaches Redis")
	require.LessOrEqual(t, ttl, time.Hour)

	unlock, ok, err := c.TryLock(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ttl, err = client.PTTL(ctx, prefix+"lock:k").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, time.Minute)
	require.NoError(t, unlock(ctx))

	require.NoError(t, c.Set(ctx, "sub-ms", []byte("v"), time.Microsecond), "a TTL under Redis's 1 ms resolution is rounded up")
}

func TestRedisFromURL(t *testing.T) {
	ctx := t.Context()
	_, prefix := redistest.New(t, "cache") // cleanup of the prefix
	c, err := cache.NewRedisFromURL(redistest.URL(), prefix)
	require.NoError(t, err)
	require.NoError(t, c.Ping(ctx))
	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Minute))
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)
	require.NoError(t, c.Close())
	_, err = c.Get(ctx, "k")
	require.Error(t, err, "the client is closed with the cache")

	_, err = cache.NewRedisFromURL("http://127.0.0.1:6379", prefix)
	require.Error(t, err)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentAddr returns a loopback address that accepts connections and never answers, like a server
// that hangs or a network that drops packets.
func silentAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn) // held open, never read or written
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// TestRedisUnavailable checks that a Redis that is down or hangs yields errors (not misses, not panics)
// that come back when the caller's deadline passes instead of after go-redis's own timeouts.
func TestRedisUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(*testing.T) string
		want error // besides being an error, not ErrMiss
	}{
		{"ConnectionRefused", closedAddr, nil},
		{"NoAnswer", silentAddr, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.NewRedisFromURL("redis://"+tc.addr(t)+"/0?dial_timeout=30s&read_timeout=30s&write_timeout=30s", "berth-test:")
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })

			ops := map[string]func(ctx context.Context) error{
				"get": func(ctx context.Context) error { _, err := c.Get(ctx, "k"); return err },
				"set": func(ctx context.Context) error { return c.Set(ctx, "k", []byte("v"), time.Minute) },
				"del": func(ctx context.Context) error { return c.Delete(ctx, "k") },
				"lock": func(ctx context.Context) error {
					unlock, ok, err := c.TryLock(ctx, "k", time.Minute)
					if unlock != nil || ok {
						return errors.New("lock granted by an unreachable Redis")
					}
					return err
				},
				"ping": c.Ping,
			}
			for name, op := range ops {
				// The deadline is far below go-redis's 30 s timeouts set above: the call can only
				// come back in time by honouring the context.
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				result := make(chan error, 1)
				go func() { result <- op(ctx) }()
				select {
				case err := <-result:
					t.Logf("%s: %v", name, err)
					require.Error(t, err, name)
					require.NotErrorIs(t, err, cache.ErrMiss, name)
					if tc.want != nil {
						require.ErrorIs(t, err, tc.want, name)
					}
				case <-time.After(15 * time.Second): // a watchdog, not a timing assertion
					t.Fatalf("%s: no answer long after the context deadline", name)
				}
				cancel()
			}
		})
	}
}

// TestRedisOpTimeout checks that WithOpTimeout bounds calls whose context has no deadline.
func TestRedisOpTimeout(t *testing.T) {
	c, err := cache.NewRedisFromURL("redis://"+silentAddr(t)+"?read_timeout=30s&write_timeout=30s", "berth-test:",
		cache.WithOpTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	result := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), "k"); result <- err }()
	select {
	case err := <-result:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(15 * time.Second): // a watchdog, not a timing assertion
		t.Fatal("no answer long after the per-call timeout")
	}
}
