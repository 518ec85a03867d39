package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache/redistest"
	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// served is a Berth built by serveConfig (the wiring of `berth serve`), listening on a port of its own.
type served struct {
	URL  string
	pass string
}

// startServe runs serveConfig with args (over a fresh data directory, port 0) and the clock, and stops
// it when the test ends.
func startServe(t *testing.T, clock func() time.Time, args ...string) *served {
	t.Helper()
	return startServeIn(t, t.TempDir(), clock, args...)
}

// startServeIn is startServe over the data directory dataDir.
func startServeIn(t *testing.T, dataDir string, clock func() time.Time, args ...string) *served {
	t.Helper()
	s := &served{pass: "Test-" + rand.Text()[:12]}
	base := []string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}
	if i := slices.Index(args, "--admin-password"); i >= 0 && i+1 < len(args) {
		s.pass = args[i+1] // nodes sharing one database share its admin
	} else {
		base = append(base, "--admin-password", s.pass)
	}
	cfg, err := config.Load(append(base, args...), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveConfig(ctx, cfg, io.Discard, hooks{now: clock, listening: func(a net.Addr) { addr <- a }})
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return s
}

// call sends a request as admin and checks the status.
func (s *served) call(t *testing.T, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	require.NoError(t, err)
	req.SetBasicAuth("admin", s.pass)
	req.Header.Set("Content-Type", "application/json")
	r := roundTrip(t, req)
	require.Equal(t, want, r.status, "%s %s: %s", method, path, r.body)
	return r.body
}

// reply is an answer read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// roundTrip sends req with the default client and returns the answer, its body read whole and closed. A
// failure to send or to read the body fails t.
func roundTrip(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// proxyProject registers upstreamURL and creates proxy-cache project "px" over it with the Proxy
// Referrer API on.
func (s *served) proxyProject(t *testing.T, upstreamURL string) {
	t.Helper()
	s.call(t, http.MethodPost, "/api/v2.0/registries", map[string]any{"name": "up", "type": "docker-registry", "url": upstreamURL}, http.StatusCreated)
	var regs []struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal(s.call(t, http.MethodGet, "/api/v2.0/registries", nil, http.StatusOK), &regs))
	require.Len(t, regs, 1)
	s.call(t, http.MethodPost, "/api/v2.0/projects", map[string]any{"project_name": "px", "registry_id": regs[0].ID,
		"metadata": map[string]string{"public": "true", "proxy_referrer_api": "true"}}, http.StatusCreated)
}

// referrers GETs the referrers of the proxied subject and returns the status, X-Cache and the count.
func (s *served) referrers(t *testing.T, subject ocispec.Descriptor) (status int, xcache string, n int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v2/px/lib/app/referrers/"+subject.Digest.String(), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var idx ocispec.Index
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&idx))
	}
	return resp.StatusCode, resp.Header.Get("X-Cache"), len(idx.Manifests)
}

// upstreamWithReferrer starts go-containerregistry's registry (referrers API) that answers 503 to
// everything while down is set, and pushes a subject with one referrer.
func upstreamWithReferrer(t *testing.T, down *atomic.Bool) (*registrytest.Server, ocispec.Descriptor) {
	t.Helper()
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	img := up.PushImage(t, "lib/app", "v1")
	up.PushReferrer(t, "lib/app", img.Manifest, "application/vnd.example.sig", nil)
	return up, img.Manifest
}

// The referrers cache TTL wired by serve is referrers_cache_ttl: with the in-process cache and a fake
// clock, an upstream answer is served STALE while the upstream is down up to exactly that age, and
// after it the answer is gone (no local referrers: 503). Run with the default (one week) and another
// value, so that wiring any other TTL, a constant included, fails.
func TestServeReferrersCacheTTLInProcess(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		ttl   time.Duration
		local bool // a referrer of the subject pushed into the project: LOCAL instead of 503 after the TTL
	}{
		{"default one week", nil, 7 * 24 * time.Hour, false},
		{"default one week, with a local referrer", nil, 7 * 24 * time.Hour, true},
		{"configured", []string{"--referrers-cache-ttl", "50h"}, 50 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ttl, mustLoad(t, tt.args).ReferrersCacheTTL)
			t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			clock := clocktest.New(t0)
			var down atomic.Bool
			up, subject := upstreamWithReferrer(t, &down)
			b := startServe(t, clock.Now, tt.args...)
			b.proxyProject(t, up.URL)
			after, afterStatus, local := "", http.StatusServiceUnavailable, 0
			if tt.local {
				b.pushLocalReferrer(t, subject)
				after, afterStatus, local = "LOCAL", http.StatusOK, 1
			}

			steps := []struct {
				at         time.Duration // after the first answer was stored
				wantStatus int
				wantCache  string
				wantN      int
			}{
				{0, http.StatusOK, "MISS", 1 + local},
				{time.Minute, http.StatusOK, "STALE", 1 + local}, // past the freshness window, upstream down
				{tt.ttl - time.Second, http.StatusOK, "STALE", 1 + local},
				{tt.ttl, afterStatus, after, local}, // the entry expired with the TTL
				{tt.ttl + time.Hour, afterStatus, after, local},
			}
			for i, st := range steps {
				clock.Set(t0.Add(st.at))
				down.Store(i > 0)
				status, xcache, n := b.referrers(t, subject)
				require.Equal(t, st.wantStatus, status, "at +%s", st.at)
				require.Equal(t, st.wantCache, xcache, "at +%s", st.at)
				require.Equal(t, st.wantN, n, "at +%s", st.at)
			}
		})
	}
}

// With Redis, the stored entry's PTTL is referrers_cache_ttl (less the moments the test took).
func TestServeReferrersCacheTTLRedis(t *testing.T) {
	redisURL := redistest.URL()
	client := redistest.Client(t)
	tests := []struct {
		name string
		args []string
		ttl  time.Duration
	}{
		{"default one week", nil, 7 * 24 * time.Hour},
		{"configured", []string{"--referrers-cache-ttl", "50h"}, 50 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := redistest.Prefix(t, client, "serve")
			var down atomic.Bool
			up, subject := upstreamWithReferrer(t, &down)
			args := append([]string{"--redis-url", redisURL, "--redis-key-prefix", prefix}, tt.args...)
			b := startServe(t, nil, args...)
			b.proxyProject(t, up.URL)
			status, xcache, _ := b.referrers(t, subject)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "MISS", xcache)

			keys, err := client.Keys(t.Context(), prefix+"val:*").Result()
			require.NoError(t, err)
			require.Len(t, keys, 1, "one referrers entry under the configured prefix")
			pttl, err := client.PTTL(t.Context(), keys[0]).Result()
			require.NoError(t, err)
			require.LessOrEqual(t, pttl, tt.ttl)
			require.Greater(t, pttl, tt.ttl-time.Minute, "PTTL %s, want about %s", pttl, tt.ttl)
		})
	}
}

// pushLocalReferrer pushes an artifact whose subject is subject into px/lib/app (as admin).
func (s *served) pushLocalReferrer(t *testing.T, subject ocispec.Descriptor) {
	t.Helper()
	empty := []byte("{}")
	d := digest.FromBytes(empty)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v2/px/lib/app/blobs/uploads/?digest="+d.String(), bytes.NewReader(empty))
	require.NoError(t, err)
	req.SetBasicAuth("admin", s.pass)
	req.Header.Set("Content-Type", "application/octet-stream")
	r := roundTrip(t, req)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: d, Size: int64(len(empty))}
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.local", Config: desc, Layers: []ocispec.Descriptor{desc}, Subject: &subject})
	require.NoError(t, err)
	req, err = http.NewRequest(http.MethodPut, s.URL+"/v2/px/lib/app/manifests/"+digest.FromBytes(m).String(), bytes.NewReader(m))
	require.NoError(t, err)
	req.SetBasicAuth("admin", s.pass)
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	r = roundTrip(t, req)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
}

func mustLoad(t *testing.T, args []string) config.Config {
	t.Helper()
	cfg, err := config.Load(args, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}
