package quota_test

import (
	"context"
	"crypto/rand"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/quota"
)

// overlapRemover is a Remover that counts the removals in progress across every node of a test and
// records the most seen at once; each removal takes a while, so that two unserialised ones overlap.
type overlapRemover struct {
	quota.Remover
	active, most *atomic.Int64
}

func (r overlapRemover) Remove(ctx context.Context, g *quota.Group) ([]string, error) {
	n := r.active.Add(1)
	defer r.active.Add(-1)
	for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
	}
	time.Sleep(100 * time.Millisecond)
	return r.Remover.Remove(ctx, g)
}

// TestMakeRoomAcrossNodes: two nodes (stores, blob stores and Redis clients of their own) share one
// PostgreSQL database, one storage directory and one Redis. Both make room in the same project at the
// same time, several times: the project's lease makes the evictions take turns, and the second of
// each pair finds the room the first made instead of evicting again.
func TestMakeRoomAcrossNodes(t *testing.T) {
	ctx := context.Background()
	dbURL, dir := sqltest.Postgres(t), t.TempDir()
	redisURL := os.Getenv("BERTH_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	prefix := "berth-test:quota:" + rand.Text() + ":"
	var active, most atomic.Int64
	var nodes []*quota.Evictor
	var e *env
	for range 2 {
		fs, s := contenttest.StoresOn(t, dir, dbURL) // one storage directory, one database: two nodes
		client, err := cache.NewRedisClient(redisURL)
		require.NoError(t, err)
		require.NoError(t, client.Ping(ctx).Err(), "the test needs Redis at %s (BERTH_TEST_REDIS_URL)", redisURL)
		t.Cleanup(func() { _ = client.Close() })
		ev, err := quota.NewEvictor(quota.Options{Store: s, Blobs: fs, Leases: lease.NewRedis(client, prefix),
			Remover: overlapRemover{Remover: metaRemover(s, fs), active: &active, most: &most}})
		require.NoError(t, err)
		nodes = append(nodes, ev)
		if e == nil {
			e = &env{t: t, ctx: ctx, store: s, blobs: fs, clock: time.Unix(1_700_000_000, 0).UTC()}
		}
	}
	const rounds, size = 3, 2000
	p := e.proxyProject("cache", 100_000)
	for range 2 * rounds {
		e.image(p, "cache/a", size)
	}
	for r := range rounds {
		// Both nodes want room for one more image while the project is full: one image must go.
		full := e.usage(p)
		limited := *p
		limited.StorageLimit = full
		var wg sync.WaitGroup
		for _, ev := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := ev.MakeRoom(ctx, &limited, size, "")
				require.NoError(t, err)
				require.True(t, ok)
			}()
		}
		wg.Wait()
		arts, err := e.store.ListCachedArtifacts(ctx, p.ID)
		require.NoError(t, err)
		require.Len(t, arts, 2*rounds-r-1, "round %d: exactly one image evicted for both nodes", r)
	}
	require.EqualValues(t, 1, most.Load(), "evictions of one project ran at once on two nodes")
}
