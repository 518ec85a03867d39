package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ReferrersResult is issue 4's figures: warm referrers GETs through a proxy-cache project with the
// Proxy Referrer API on vs a bare server serving the same index bytes, and cold latency vs the upstream.
type ReferrersResult struct {
	Referrers int // descriptors in the warm index
	IndexSize int // its bytes
	Memory    ReferrersVariant
	Redis     *ReferrersVariant // nil when skipped
	RedisSkip string            // why Redis was skipped
	// DiskLayer: warm GETs with the persistent layer (Berth) vs memory only (Base), issue 15.
	DiskLayer Comparison
}

// ReferrersVariant is one Berth configuration (in-process cache or Redis).
type ReferrersVariant struct {
	Name               string
	Warm               Comparison
	WarmHeader         string        // X-Cache of a warm answer
	UpstreamDuringWarm int64         // referrers requests the upstream saw during the warm trials
	First              time.Duration // the first referrers request of a fresh Berth (connect, capability probe)
	Cold               Cold
}

// Cold is the latency of referrers requests for subjects Berth has never been asked about, through
// Berth and directly from the upstream, on warm keep-alive connections, interleaved.
type Cold struct {
	Berth, Direct []time.Duration // sorted
	Cache         map[string]int  // X-Cache values of the Berth answers
}

var indexAccept = http.Header{"Accept": {ocispec.MediaTypeImageIndex}}

// artifactTypes are what real signers and attesters push.
var artifactTypes = []string{
	"application/vnd.dev.sigstore.bundle.v0.3+json",
	"application/vnd.cncf.notary.signature",
	"application/spdx+json",
	"application/vnd.in-toto+json",
	"application/vnd.dev.cosign.artifact.sig.v1+json",
}

// RunReferrers starts go-containerregistry's registry with the referrers API as the upstream, pushes a
// subject with Referrers referrers and ColdSubjects more subjects with two each, and measures a Berth
// with the in-process cache, then (when Redis answers) a Berth on Redis.
func (r *Runner) RunReferrers(ctx context.Context) (res ReferrersResult, err error) {
	cfg := r.Cfg
	up, upURL, err := startChild(ctx, cfg.Self, r.dir, r.cpus, ModeGGCR)
	if err != nil {
		return res, err
	}
	defer r.stopProc(up, &err)
	upReg := &Registry{URL: upURL, Client: newClient()}
	defer upReg.Client.CloseIdleConnections()

	const repo = "lib/app"
	push := func(tag string, seed uint64, referrers int) (ocispec.Descriptor, error) {
		layer, err := upReg.PushBytes(ctx, repo, NewContent(seed, 1024).Bytes())
		if err != nil {
			return layer, err
		}
		subj, _, err := upReg.PushImage(ctx, repo, tag, layer)
		if err != nil {
			return subj, err
		}
		for i := range referrers {
			if _, err := upReg.PushReferrer(ctx, repo, subj, artifactTypes[i%len(artifactTypes)], seed*1000+uint64(i)); err != nil {
				return subj, err
			}
		}
		return subj, nil
	}
	warm, err := push("v1", 7, cfg.Referrers)
	if err != nil {
		return res, fmt.Errorf("push to upstream: %w", err)
	}
	cold := make([]digest.Digest, cfg.ColdSubjects)
	for i := range cold {
		d, err := push("c"+strconv.Itoa(i), uint64(10_000+i), 2)
		if err != nil {
			return res, fmt.Errorf("push to upstream: %w", err)
		}
		cold[i] = d.Digest
	}
	direct, err := referrerDigests(ctx, upReg, upURL+"/v2/"+repo+"/referrers/"+warm.Digest.String())
	if err != nil {
		return res, err
	}
	if len(direct) != cfg.Referrers {
		return res, fmt.Errorf("upstream lists %d referrers, pushed %d", len(direct), cfg.Referrers)
	}

	res.Memory, err = r.referrersVariant(ctx, "in-process cache", upReg, repo, warm.Digest, direct, cold, &res)
	if err != nil {
		return res, err
	}
	if res.DiskLayer, err = r.referrersDiskLayer(ctx, upReg, repo, warm.Digest, direct); err != nil {
		return res, err
	}
	if cfg.RedisURL == "" {
		res.RedisSkip = "not asked (-redis-url empty)"
		return res, nil
	}
	if reason := redisReachable(cfg.RedisURL); reason != "" {
		res.RedisSkip = reason
		r.progress("  referrers: Redis skipped: %s", reason)
		return res, nil
	}
	v, err := r.referrersVariant(ctx, "Redis", upReg, repo, warm.Digest, direct, cold, nil, "--redis-url", cfg.RedisURL)
	res.Redis = &v
	return res, err
}

// referrersVariant measures one Berth configuration. res, when not nil, receives the index's shape.
func (r *Runner) referrersVariant(ctx context.Context, name string, upReg *Registry, repo string, warm digest.Digest,
	want []digest.Digest, cold []digest.Digest, res *ReferrersResult, extra ...string) (v ReferrersVariant, err error) {
	v.Name = name
	b, err := r.startBerth(ctx, extra...)
	if err != nil {
		return v, err
	}
	defer r.stopBerth(b, &err)
	if err := b.ProxyProject(ctx, "px", upReg.URL, true); err != nil {
		return v, err
	}
	path := "/v2/px/" + repo + "/referrers/" + warm.String()
	anon := &Registry{URL: b.URL, Client: newClient()}
	defer anon.Client.CloseIdleConnections()

	t0 := time.Now()
	if _, err := referrerDigests(ctx, anon, b.URL+path); err != nil {
		return v, err
	}
	v.First = time.Since(t0)
	status, hdr, body, err := anon.Get(ctx, b.URL+path, indexAccept)
	if err != nil {
		return v, fmt.Errorf("warm GET %s: %w", path, err)
	}
	if status != http.StatusOK {
		return v, fmt.Errorf("warm GET %s: status %d", path, status)
	}
	v.WarmHeader = hdr.Get("X-Cache")
	got, err := indexDigests(body)
	if err != nil {
		return v, err
	}
	if !slices.Equal(got, want) {
		return v, fmt.Errorf("berth lists referrers %v, the upstream %v", got, want)
	}
	if res != nil {
		res.Referrers, res.IndexSize = len(got), len(body)
	}

	file := filepath.Join(r.dir, "referrers-"+strconv.Itoa(b.Pid())+".json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		return v, err
	}
	bare, bareURL, err := r.startBare(ctx, []Route{{Path: path, ContentType: hdr.Get("Content-Type"), File: file}})
	if err != nil {
		return v, err
	}
	defer r.stopProc(bare, &err)
	_, _, bb, err := anon.Get(ctx, bareURL+path, nil)
	if err != nil {
		return v, fmt.Errorf("bare server: %w", err)
	}
	if !bytes.Equal(bb, body) {
		return v, errors.New("the bare server does not serve Berth's bytes")
	}

	if err := upReg.ResetStats(ctx); err != nil {
		return v, err
	}
	r.progress("referrers (%s): warm GET, %d connections", name, r.Cfg.RefConns)
	n := int64(len(body))
	v.Warm, err = r.plan().Compare(ctx, "warm referrers GET ("+name+")",
		Load{URL: b.URL + path, Conns: r.Cfg.RefConns, WantBytes: n, Header: indexAccept},
		Load{URL: bareURL + path, Conns: r.Cfg.RefConns, WantBytes: n, Header: indexAccept}, "ratio >= 0.6, p99 < 5 ms")
	if err != nil {
		return v, err
	}
	st, err := upReg.Stats(ctx)
	if err != nil {
		return v, err
	}
	v.UpstreamDuringWarm = st.Referrers

	r.progress("referrers (%s): cold latency, %d subjects", name, len(cold))
	v.Cold, err = coldLatency(ctx, anon, upReg, b.URL+"/v2/px/"+repo, upReg.URL+"/v2/"+repo, cold)
	return v, err
}

// coldLatency times one referrers GET per subject through Berth and directly, alternating which goes
// first, on keep-alive connections warmed beforehand.
func coldLatency(ctx context.Context, berth, upstream *Registry, berthRepo, upRepo string, subjects []digest.Digest) (Cold, error) {
	c := Cold{Cache: map[string]int{}}
	timed := func(reg *Registry, u string) (time.Duration, http.Header, error) {
		t0 := time.Now()
		status, hdr, body, err := reg.Get(ctx, u, indexAccept)
		el := time.Since(t0)
		if err != nil {
			return 0, nil, err
		}
		if status != http.StatusOK {
			return 0, nil, fmt.Errorf("GET %s: status %d: %.200s", u, status, body)
		}
		ds, err := indexDigests(body)
		if err != nil {
			return 0, nil, fmt.Errorf("GET %s: %w", u, err)
		}
		if len(ds) != 2 {
			return 0, nil, fmt.Errorf("GET %s: want 2 referrers, got %d", u, len(ds))
		}
		return el, hdr, nil
	}
	for i, d := range subjects {
		for j := range 2 {
			if (i+j)%2 == 0 {
				el, hdr, err := timed(berth, berthRepo+"/referrers/"+d.String())
				if err != nil {
					return c, err
				}
				c.Berth = append(c.Berth, el)
				c.Cache[hdr.Get("X-Cache")]++
			} else {
				el, _, err := timed(upstream, upRepo+"/referrers/"+d.String())
				if err != nil {
					return c, err
				}
				c.Direct = append(c.Direct, el)
			}
		}
	}
	slices.Sort(c.Berth)
	slices.Sort(c.Direct)
	return c, nil
}

// referrerDigests GETs a referrers list and returns its descriptors' digests.
func referrerDigests(ctx context.Context, reg *Registry, u string) ([]digest.Digest, error) {
	status, _, body, err := reg.Get(ctx, u, indexAccept)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %.300s", u, status, body)
	}
	return indexDigests(body)
}

// indexDigests returns the sorted digests an image index lists.
func indexDigests(body []byte) ([]digest.Digest, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, fmt.Errorf("referrers answer: %w", err)
	}
	ds := make([]digest.Digest, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		ds = append(ds, m.Digest)
	}
	slices.Sort(ds)
	return ds, nil
}

// redisReachable returns "" when a TCP connection to the Redis URL's host succeeds, else why not.
func redisReachable(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("bad Redis URL %q", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return "Redis not reachable at " + host
	}
	_ = c.Close()
	return ""
}
