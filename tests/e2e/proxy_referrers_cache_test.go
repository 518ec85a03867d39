package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// privateRedis is a redis-server started by the test on its own port, never the shared one.
type privateRedis struct {
	URL    string
	client *redis.Client
	cmd    *exec.Cmd
	done   chan struct{}
}

// startPrivateRedis starts redis-server on a free loopback port without persistence; it is killed when
// the test ends (or earlier by kill). redis-server cannot listen on port 0 and report the port, so the
// port is probed: the server is then checked to be this process (INFO's process_id), and started again
// on another port when another process took it. Without redis-server the test fails under
// BERTH_REQUIRE_REDIS=1 (set by `make e2e`) or CI=true, and is skipped otherwise.
func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not on PATH and BERTH_REQUIRE_REDIS=1 (the Debian package redis-server; `make services`)")
		}
		missing(t, "redis-server not on PATH (the Debian package redis-server; `make services`)")
	}
	for attempt := 1; ; attempt++ {
		r, err := launchPrivateRedis(t, bin)
		if err == nil {
			return r
		}
		if attempt == 3 {
			t.Fatalf("redis-server: %v", err)
		}
		t.Logf("redis-server: %v; again on another port", err)
	}
}

// launchPrivateRedis starts one redis-server and waits until it answers as itself.
func launchPrivateRedis(t *testing.T, bin string) (*privateRedis, error) {
	t.Helper()
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	require.NoError(t, cmd.Start())
	r := &privateRedis{URL: "redis://" + addr + "/0", cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	r.client = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() {
		_ = r.client.Close()
		r.kill()
	})
	deadline := time.Now().Add(startupTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := r.client.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if pid := infoField(info, "process_id"); pid != strconv.Itoa(cmd.Process.Pid) {
				r.kill()
				return nil, fmt.Errorf("%s is answered by process %s, not ours (%d)", addr, pid, cmd.Process.Pid)
			}
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("exited during start-up on %s (port taken?): %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "redis-server not answering on %s: %v", addr, err)
	}
}

// infoField returns the value of "name:" in a Redis INFO answer.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// kill stops the server at once (SIGKILL) and waits for it to exit.
func (r *privateRedis) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// referrersKeys returns Berth's cached referrers values in r (keys berth:val:v1:referrers:...).
func (r *privateRedis) referrersKeys(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := r.client.Keys(ctx, "berth:val:*").Result()
	require.NoError(t, err)
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, "berth:val:v1:referrers:") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (r *privateRedis) get(t *testing.T, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := r.client.Get(ctx, key).Bytes()
	require.NoError(t, err, "GET %s", key)
	return b
}

func (r *privateRedis) set(t *testing.T, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, r.client.Set(ctx, key, value, redis.KeepTTL).Err(), "SET %s", key)
}

// decodeEntry decodes a cached referrers entry and returns the digests its index lists.
func decodeEntry(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	e, err := cachekey.Decode(b)
	require.NoError(t, err, "cached entry %q", b)
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(e.Index, &idx), "cached index %s", e.Index)
	return digestSet(idx.Manifests)
}

// TestProxyReferrersRedis: a Berth whose referrers cache is a private Redis. A cache entry the test
// corrupts (garbage, then a valid envelope with one byte flipped) is answered correctly and healed once
// the node cache (1 s) lets Berth read it; with Redis killed, referrers requests (filtered or not, raw or
// through oras) are still answered 200.
func TestProxyReferrersRedis(t *testing.T) {
	t.Parallel()
	toolsDir(t, "oras")
	rd := startPrivateRedis(t)
	up := registrytest.NewGGCR(t, true)
	img := up.PushImage(t, upstreamRepo, "v1")
	sbom := up.PushReferrer(t, upstreamRepo, img.Manifest, typeSBOM, map[string]string{"org.berth.e2e": "sbom"})
	sig := up.PushReferrer(t, upstreamRepo, img.Manifest, typeSig, nil)
	want := digestSet([]ocispec.Descriptor{sbom, sig})

	proxy := startServer(t, serverConfig{args: []string{"--redis-url", rd.URL}})
	id := proxy.createRegistry(t, "ggcr", up.URL, nil)
	proxy.createProxyProject(t, "cache", id)
	path := "/v2/cache/" + upstreamRepo + "/referrers/" + img.Manifest.Digest.String()
	filtered := path + "?artifactType=" + url.QueryEscape(typeSig)

	p := getReferrers(t, proxy, path)
	require.Equal(t, want, digestSet(p.index.Manifests), "cold:\n%s", p.res)
	require.Equal(t, "MISS", p.res.Header.Get("X-Cache"), "cold:\n%s", p.res)
	p = getReferrers(t, proxy, path)
	require.Equal(t, want, digestSet(p.index.Manifests), "warm:\n%s", p.res)
	require.Equal(t, "HIT", p.res.Header.Get("X-Cache"), "warm:\n%s", p.res)

	keys := rd.referrersKeys(t)
	require.Len(t, keys, 1, "one referrers entry in Redis: %q", keys)
	key := keys[0]
	require.True(t, strings.HasSuffix(key, ":"+upstreamRepo+":"+img.Manifest.Digest.String()+":"), "key %q names the repository, the subject and an empty query", key)
	good := rd.get(t, key)
	require.Equal(t, want, decodeEntry(t, good))

	for _, tc := range []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"garbage", func([]byte) []byte { return []byte("this is not a referrers cache entry") }},
		{"flipped byte", func(b []byte) []byte {
			out := bytes.Clone(b)
			i := bytes.Index(out, []byte(sig.Digest.Encoded()))
			require.Positive(t, i, "the entry holds the signature's digest")
			out[i] ^= 0x01 // still UTF-8 hex-ish, but the checksum no longer matches
			return out
		}},
	} {
		bad := tc.corrupt(rd.get(t, key))
		rd.set(t, key, bad)
		// Berth may answer from its node cache (referrers-node-cache, 1 s) until it reads Redis again.
		p = untilMiss(t, proxy, path, want, tc.name+" entry")
		healed := rd.get(t, key)
		require.NotEqual(t, bad, healed, "%s entry replaced", tc.name)
		require.Equal(t, want, decodeEntry(t, healed), "%s entry healed", tc.name)
		p = getReferrers(t, proxy, path)
		require.Equal(t, "HIT", p.res.Header.Get("X-Cache"), "after healing:\n%s", p.res)
	}
	p = getReferrers(t, proxy, filtered)
	require.Equal(t, digestSet([]ocispec.Descriptor{sig}), digestSet(p.index.Manifests), "filtered:\n%s", p.res)

	// Redis dies: every request is still answered, from the node cache while it holds the entry, then
	// from the upstream.
	rd.kill()
	untilMiss(t, proxy, path, want, "Redis down")
	for range 3 {
		p = getReferrers(t, proxy, path)
		require.Equal(t, want, digestSet(p.index.Manifests), "Redis down:\n%s", p.res)
		require.Equal(t, "MISS", p.res.Header.Get("X-Cache"), "Redis down: a cache error is a miss:\n%s", p.res)
	}
	p = getReferrers(t, proxy, filtered)
	require.Equal(t, digestSet([]ocispec.Descriptor{sig}), digestSet(p.index.Manifests), "filtered, Redis down:\n%s", p.res)
	require.Equal(t, "artifactType", p.res.Header.Get("OCI-Filters-Applied"), "%s", p.res)
	c := newClients(t, proxy, "oras")
	refs := c.discover(proxy.Host+"/cache/"+upstreamRepo+"@"+img.Manifest.Digest.String(), "")
	require.Equal(t, sortedStrings(typeSBOM, typeSig), artifactTypes(refs), "oras discover, Redis down: %+v", refs)
}

// untilMiss asks for path until Berth answers X-Cache: MISS (bounded); every answer, HIT from the node
// cache before that or the MISS, must list want.
func untilMiss(t *testing.T, proxy *server, path string, want map[string]bool, what string) referrersPage {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := getReferrers(t, proxy, path)
		require.Equal(t, want, digestSet(p.index.Manifests), "%s: the answer is still right:\n%s", what, p.res)
		switch x := p.res.Header.Get("X-Cache"); {
		case x == "MISS":
			return p
		case x != "HIT":
			t.Fatalf("%s: X-Cache %q, want HIT from the node cache or MISS:\n%s", what, x, p.res)
		case time.Now().After(deadline):
			t.Fatalf("%s: still HIT after 30 s; the node cache should hold entries for 1 s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline, not synchronisation
	}
}

// TestProxyReferrersCoalescing: 200 identical referrers requests arrive at once on a cold proxy; the
// upstream (go-containerregistry behind a counting wrapper) sees exactly one referrers request, and
// every client gets the full answer. The wrapper holds every upstream referrers request until all 200
// client requests have been written to the proxy, so they overlap the upstream fetch for certain.
func TestProxyReferrersCoalescing(t *testing.T) {
	t.Parallel()
	const clients = 200
	var referrersCalls, otherCalls atomic.Int64
	gate := make(chan struct{}) // closed once every client request is on the wire
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/referrers/") {
				referrersCalls.Add(1)
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			} else {
				otherCalls.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(count))
	img := up.PushImage(t, upstreamRepo, "v1")
	sig := up.PushReferrer(t, upstreamRepo, img.Manifest, typeSig, nil)

	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "counted-ggcr", up.URL, nil)
	proxy.createProxyProject(t, "cache", id)
	require.Zero(t, referrersCalls.Load(), "no referrers request before the test's")

	target := proxy.URL + "/v2/cache/" + upstreamRepo + "/referrers/" + img.Manifest.Digest.String()
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	var written sync.WaitGroup
	written.Add(clients)
	start := make(chan struct{})
	type answer struct {
		status int
		cache  string
		body   []byte
		err    error
	}
	answers := make([]answer, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			var once sync.Once
			wrote := func() { once.Do(written.Done) }
			defer wrote() // a request that failed before it was written must not hold the gate
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { wrote() },
			})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				answers[i].err = err
				return
			}
			<-start
			resp, err := hc.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer func() { _ = resp.Body.Close() }()
			answers[i].status, answers[i].cache = resp.StatusCode, resp.Header.Get("X-Cache")
			answers[i].body, answers[i].err = io.ReadAll(resp.Body)
		})
	}
	close(start)
	allWritten := make(chan struct{})
	go func() { written.Wait(); close(allWritten) }()
	select {
	case <-allWritten:
	case <-time.After(time.Minute): // a bound against a hang, not a synchronisation
		t.Errorf("the %d client requests were not all written within a minute", clients)
	}
	close(gate)
	wg.Wait()

	caches := map[string]int{}
	for i, a := range answers {
		require.NoError(t, a.err, "client %d", i)
		require.Equal(t, http.StatusOK, a.status, "client %d: %s", i, a.body)
		var idx ocispec.Index
		require.NoError(t, json.Unmarshal(a.body, &idx), "client %d: %s", i, a.body)
		require.Len(t, idx.Manifests, 1, "client %d: %s", i, a.body)
		require.Equal(t, sig.Digest, idx.Manifests[0].Digest, "client %d", i)
		caches[a.cache]++
	}
	t.Logf("X-Cache of the %d answers: %v; upstream requests: %d referrers, %d other", clients, caches, referrersCalls.Load(), otherCalls.Load())
	require.Equal(t, int64(1), referrersCalls.Load(), "the upstream must see exactly one referrers request for %d identical cold requests", clients)
}
