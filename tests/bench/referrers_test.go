package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
)

// twoReferrers is an index of two descriptors.
var twoReferrers = []byte(fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"digest":%q},{"digest":%q}]}`,
	digest.FromString("1"), digest.FromString("2")))

// fakeCachingBerth answers referrers GETs with an index of two descriptors and X-Cache as a cache in
// front of an upstream would: MISS the first time a path is asked, HIT after.
func fakeCachingBerth(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		state := "MISS"
		if seen[r.URL.Path] {
			state = "HIT"
		}
		seen[r.URL.Path] = true
		mu.Unlock()
		w.Header().Set("X-Cache", state)
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		_, _ = w.Write(twoReferrers)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The cold figures must be cold: a subject whose key was warmed before the measurement (as an entry
// left in a shared Redis by an earlier run would be) fails the scenario, naming the subject.
func TestColdLatencyFailsOnAWarmedKey(t *testing.T) {
	ctx := context.Background()
	subjects := []digest.Digest{digest.FromString("a"), digest.FromString("b"), digest.FromString("c")}
	tests := []struct {
		name    string
		warm    []digest.Digest
		wantErr string
	}{
		{"all cold", nil, ""},
		{"one key warmed beforehand", subjects[1:2], subjects[1].String() + ` was answered X-Cache "HIT", want MISS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			berth, up := fakeCachingBerth(t), fakeCachingBerth(t)
			b := &Registry{URL: berth.URL, Client: berth.Client()}
			u := &Registry{URL: up.URL, Client: up.Client()}
			for _, d := range tt.warm {
				_, err := referrerDigests(ctx, b, berth.URL+"/v2/px/lib/app/referrers/"+d.String())
				require.NoError(t, err)
			}
			c, err := coldLatency(ctx, b, u, berth.URL+"/v2/px/lib/app", up.URL+"/v2/lib/app", subjects)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, map[string]int{"MISS": len(subjects)}, c.Cache)
			require.Len(t, c.Berth, len(subjects))
			require.Len(t, c.Direct, len(subjects))
		})
	}
}

func TestCheckCold(t *testing.T) {
	d := digest.FromString("s")
	for _, tt := range []struct {
		value string
		ok    bool
	}{{"MISS", true}, {"HIT", false}, {"STALE", false}, {"LOCAL", false}, {"", false}} {
		hdr := http.Header{}
		if tt.value != "" {
			hdr.Set("X-Cache", tt.value)
		}
		require.Equal(t, tt.ok, checkCold(d, hdr) == nil, tt.value)
	}
}

// A warm trial reads X-Cache during the trial: a server that stops answering HIT part-way fails it,
// which one look before the trial would not notice.
func TestRunLoadSamplesHeaderDuringTheTrial(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := "HIT"
		if n.Add(1) > 40 {
			state = "MISS"
		}
		w.Header().Set("X-Cache", state)
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(srv.Close)
	load := Load{URL: srv.URL, Conns: 1, Duration: time.Minute, MaxRequests: 100, WantBytes: 5,
		SampleHeader: "X-Cache", SampleEvery: 10}

	res, err := RunLoad(context.Background(), load)
	require.NoError(t, err)
	require.Zero(t, res.Errors, "no wanted values: counted only")
	require.Equal(t, map[string]int{"HIT": 4, "MISS": 6}, res.Sampled)

	n.Store(0)
	load.WantSample = []string{"HIT"}
	res, err = RunLoad(context.Background(), load)
	require.NoError(t, err)
	require.Equal(t, int64(6), res.Errors)
	require.ErrorContains(t, res.FirstErr, `X-Cache "MISS"`)
	require.Equal(t, int64(94), res.Requests)
}

func TestRunLoadCyclesThroughTargets(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	bodies := map[string][]byte{"/a": []byte("a"), "/bb": []byte("bb"), "/ccc": []byte("ccc")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		_, _ = w.Write(bodies[r.URL.Path])
	}))
	t.Cleanup(srv.Close)
	res, err := RunLoad(context.Background(), Load{Conns: 1, Duration: time.Minute, MaxRequests: 30,
		Targets: []Target{{URL: srv.URL + "/a", Bytes: 1}, {URL: srv.URL + "/bb", Bytes: 2}, {URL: srv.URL + "/ccc", Bytes: 3}}})
	require.NoError(t, err)
	require.Zero(t, res.Errors)
	require.Equal(t, int64(30), res.Requests)
	require.Equal(t, map[string]int{"/a": 10, "/bb": 10, "/ccc": 10}, hits)
	require.Equal(t, int64(60), res.Bytes)
}

// A trial records the server's CPU time when given its pid; an unknown pid is an error, not a zero.
func TestRunLoadServerCPU(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) }))
	t.Cleanup(srv.Close)
	_, err := RunLoad(context.Background(), Load{URL: srv.URL, Conns: 1, Duration: time.Minute, MaxRequests: 5, WantBytes: 1, ServerPid: 1 << 30})
	require.Error(t, err)
	res, err := RunLoad(context.Background(), Load{URL: srv.URL, Conns: 1, Duration: time.Minute, MaxRequests: 5, WantBytes: 1})
	require.NoError(t, err)
	require.Zero(t, res.ServerCPU)
	require.Positive(t, res.ClientCores)
}

// A Redis variant's keys are its own: checkRedisEmpty refuses a prefix that holds keys, and
// deleteRedisPrefix removes exactly the keys under the prefix (real Redis at 127.0.0.1:6379).
func TestRedisPrefixCheckAndCleanup(t *testing.T) {
	ctx := context.Background()
	const url = "redis://127.0.0.1:6379/0"
	c, err := cache.NewRedisClient(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Ping(ctx).Err(), "the test needs Redis at %s", url)
	prefix := "berthbench-test:" + rand.Text() + ":"
	other := prefix[:len(prefix)-1] + "x:" // shares the prefix's text but not its separator
	t.Cleanup(func() { _ = c.Del(context.Background(), other+"k").Err() })

	require.NoError(t, checkRedisEmpty(ctx, url, prefix))
	for _, k := range []string{prefix + "val:a", prefix + "lock:a", prefix + "val:b", other + "k"} {
		require.NoError(t, c.Set(ctx, k, "1", time.Minute).Err())
	}
	require.ErrorContains(t, checkRedisEmpty(ctx, url, prefix), "already holds keys under "+prefix)
	n, err := deleteRedisPrefix(ctx, url, prefix)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NoError(t, checkRedisEmpty(ctx, url, prefix))
	require.Equal(t, int64(1), c.Exists(ctx, other+"k").Val(), "keys outside the prefix stay")
}

// Compare runs the sampled load in every trial (warm-up, then rounds): a Berth that starts answering
// MISS after its first answers fails the comparison in a measured round. Trials end by their request
// cap here, not by time.
func TestCompareSamplesEveryRound(t *testing.T) {
	tests := []struct {
		name     string
		hitUntil int64 // answers before the server turns to MISS
		wantErr  string
	}{
		{"always HIT", 1 << 40, ""},
		{"turns MISS in the second round", 50, `X-Cache "MISS"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			berth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				state := "HIT"
				if n.Add(1) > tt.hitUntil {
					state = "MISS"
				}
				w.Header().Set("X-Cache", state)
				_, _ = w.Write([]byte("idx"))
			}))
			t.Cleanup(berth.Close)
			bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("idx")) }))
			t.Cleanup(bare.Close)
			plan := Plan{Rounds: 2, Trial: time.Minute, Warmup: time.Minute, MaxRequests: 20}
			c, err := plan.Compare(context.Background(), "warm", Load{URL: berth.URL, Conns: 1, WantBytes: 3,
				SampleHeader: "X-Cache", SampleEvery: 5, WantSample: []string{"HIT"}}, Load{URL: bare.URL, Conns: 1, WantBytes: 3}, "")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, c.Berth, 2)
			require.Len(t, c.Base, 2)
			for _, r := range c.Berth {
				require.Equal(t, map[string]int{"HIT": 4}, r.Sampled)
			}
			require.Empty(t, c.Base[0].Sampled)
		})
	}
}
