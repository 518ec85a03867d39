package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
	berthhttp "github.com/berth-registry/berth/src/server/registry"
)

// node is one more Berth node over the env's storage and database: its own proxy service (so its own
// in-process fills) and /v2/ server, as another process sharing PostgreSQL and the object store has.
type node struct {
	svc *proxy.Service
	srv *httptest.Server
}

func (e *env) node(opts proxy.Options) *node {
	e.t.Helper()
	log := slog.New(slog.DiscardHandler)
	svc := proxy.New(e.local, proxy.NewClients(e.store, e.box, upstream.Options{}), e.fs, e.store, log, opts)
	srv := httptest.NewServer(berthhttp.New(svc, e.store, auth.NewAuthenticator(adminPassword), log, berthhttp.Options{}))
	e.t.Cleanup(srv.Close)
	e.t.Cleanup(func() { _ = svc.WaitFills(context.Background()) })
	return &node{svc: svc, srv: srv}
}

// getBlob reads a blob through n as the admin.
func (n *node) getBlob(path string) (int, []byte, error) { return adminGet(n.srv, path) }

// slowBlobs delays every upstream blob GET by d before it is answered.
func slowBlobs(d time.Duration) fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if kindOf(r, http.MethodGet, "blobs") {
			time.Sleep(d)
		}
		next.ServeHTTP(w, r)
	}
}

func sharedLockers(t *testing.T) map[string]lease.Locker {
	client, prefix := testRedis(t)
	return map[string]lease.Locker{"local": lease.NewLocal(), "redis": lease.NewRedis(client, prefix)}
}

// testRedis returns a client of the test Redis and a key prefix of the test's own (deleted at the end).
func testRedis(t *testing.T) (redis.UniversalClient, string) {
	url := os.Getenv("BERTH_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	client, err := cache.NewRedisClient(url)
	require.NoError(t, err)
	require.NoError(t, client.Ping(t.Context()).Err(), "the tests need Redis at %s (BERTH_TEST_REDIS_URL)", url)
	prefix := "berth-test:proxy:" + rand.Text() + ":"
	t.Cleanup(func() {
		keys, _ := client.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			_ = client.Del(context.Background(), keys...).Err()
		}
		_ = client.Close()
	})
	return client, prefix
}

// TestBlobOneFillAcrossNodes: clients of three nodes sharing storage, database and leases ask for one
// cold blob at once; the upstream is asked once, and every client gets the blob.
func TestBlobOneFillAcrossNodes(t *testing.T) {
	for name, locker := range sharedLockers(t) {
		t.Run(name, func(t *testing.T) {
			up, data, d := newBlobUpstream(t, distribution, 4<<20)
			up.faults.set(slowBlobs(300 * time.Millisecond))
			e := newEnv(t, up)
			opts := proxy.Options{Leases: locker, FillPoll: 10 * time.Millisecond}
			nodes := []*node{e.node(opts), e.node(opts), e.node(opts)}

			const perNode = 4
			var wg sync.WaitGroup
			errs := make(chan error, len(nodes)*perNode)
			for _, n := range nodes {
				for range perNode {
					wg.Go(func() {
						status, body, err := n.getBlob("app/blobs/" + d.String())
						switch {
						case err != nil:
							errs <- err
						case status != http.StatusOK || !bytes.Equal(body, data):
							errs <- fmt.Errorf("status %d, %d bytes", status, len(body))
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+d.String()), "one upstream download across the nodes")
			for _, n := range nodes {
				require.NoError(t, n.svc.WaitFills(t.Context()))
			}
			e.requireStored(d, data)
		})
	}
}

// TestBlobFillTakeover: a node died holding a blob's fill lease (it never renews it); a node asked for
// the blob waits, takes the lease over once it expired and downloads the blob itself.
func TestBlobFillTakeover(t *testing.T) {
	for name, locker := range sharedLockers(t) {
		t.Run(name, func(t *testing.T) {
			up, data, d := newBlobUpstream(t, distribution, 64<<10)
			e := newEnv(t, up)
			const ttl = 400 * time.Millisecond
			dead, ok, err := locker.TryAcquire(t.Context(), "fill:"+project+"/app@"+d.String(), ttl)
			require.NoError(t, err)
			require.True(t, ok)
			n := e.node(proxy.Options{Leases: locker, FillPoll: 10 * time.Millisecond, FillLeaseTTL: ttl})

			start := time.Now()
			status, body, err := n.getBlob("app/blobs/" + d.String())
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status)
			require.True(t, bytes.Equal(data, body))
			require.GreaterOrEqual(t, time.Since(start), ttl/2, "the node waited for the dead node's lease")
			require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+d.String()))
			require.ErrorIs(t, dead.Check(t.Context()), lease.ErrLost, "the dead node's commit would be fenced off")
			require.NoError(t, n.svc.WaitFills(t.Context()))
			e.requireStored(d, data)
		})
	}
}

// TestBlobFillLosesLease: while a node downloads a blob, its lease passes to another node (as after a
// pause longer than the TTL); the node's renewal notices, its download stops, its client's response is
// cut short, and it stores nothing: the successor's fill is the one that counts.
func TestBlobFillLosesLease(t *testing.T) {
	client, prefix := testRedis(t)
	locker := lease.NewRedis(client, prefix)
	up, data, d := newBlobUpstream(t, distribution, 256<<10)
	gate := make(chan struct{})
	defer close(gate)
	up.faults.set(gateBlobs(1<<10, gate))
	e := newEnv(t, up)
	n := e.node(proxy.Options{Leases: locker, FillLeaseTTL: 300 * time.Millisecond, FillPoll: 10 * time.Millisecond})

	got := make(chan error, 1)
	go func() {
		status, body, err := n.getBlob("app/blobs/" + d.String())
		if err == nil && (status != http.StatusOK || !bytes.Equal(body, data)) {
			err = fmt.Errorf("status %d, %d bytes", status, len(body))
		}
		got <- err
	}()
	require.Eventually(t, func() bool { return up.hits.path(http.MethodGet, "/v2/app/blobs/"+d.String()) == 1 },
		10*time.Second, 10*time.Millisecond, "the download started")
	name := "fill:" + project + "/app@" + d.String()
	require.NoError(t, client.Del(t.Context(), prefix+"lease:{"+name+"}").Err())
	successor, ok, err := locker.TryAcquire(t.Context(), name, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	select {
	case err := <-got:
		require.Error(t, err, "the client's response is cut short, never completed with unverified bytes")
	case <-time.After(10 * time.Second):
		t.Fatal("the download went on after its lease was lost")
	}
	require.NoError(t, n.svc.WaitFills(t.Context()))
	_, err = e.fs.Stat(t.Context(), d)
	require.ErrorIs(t, err, storage.ErrNotFound, "the node that lost its lease stored nothing")
	e.requireNoTemp()
	require.NoError(t, successor.Check(t.Context()), "the successor still holds the lease")
}
