package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/cache"
)

// ReferrersResult is issue 4's figures: warm referrers GETs through a proxy-cache project with the
// Proxy Referrer API on vs a bare server serving the same index bytes, and cold latency vs the upstream,
// for each Berth configuration (Variants: the in-process cache, then, when Redis answers, Redis with
// the node cache on and off).
type ReferrersResult struct {
	Referrers int // descriptors in each warm index
	IndexSize int // the hot subject's index bytes
	Subjects  int // subjects of the many-subject warm runs
	Variants  []ReferrersVariant
	RedisSkip string // why the Redis variants were skipped
	// DiskLayer: warm GETs of the hot subject with the persistent layer (Berth) vs memory only (Base),
	// issue 15.
	DiskLayer Comparison
}

// ReferrersVariant is one Berth configuration.
type ReferrersVariant struct {
	Name string
	// Hot is one subject asked by every connection (with Redis and the node cache on, this measures the
	// node cache); Many cycles through Subjects subjects, each connection from its own offset.
	Hot, Many          Comparison
	UpstreamDuringWarm int64         // referrers requests the upstream saw during the warm trials
	First              time.Duration // the first referrers request of a fresh Berth (connect, capability probe)
	Cold               Cold
	RedisPrefix        string // the keys this variant's Berth wrote under ("" = no Redis); removed after it
	indexSize          int
}

// Cold is the latency of referrers requests for subjects Berth has never been asked about, through
// Berth and directly from the upstream, on warm keep-alive connections, interleaved: Berth[i] and
// Direct[i] are the same subject, back to back.
type Cold struct {
	Berth, Direct []time.Duration // in request order (paired)
	Cache         map[string]int  // X-Cache values of the Berth answers (all MISS, or the run failed)
}

// warmFreshness is the freshness window (project metadata proxy_referrer_cache_seconds) of the
// benchmark's proxy projects: longer than any run, so that every warm answer is a cache HIT (checked
// by sampling) instead of a refresh now and then.
const warmFreshness = "3600"

var indexAccept = http.Header{"Accept": {ocispec.MediaTypeImageIndex}}

// artifactTypes are what real signers and attesters push.
var artifactTypes = []string{
	"application/vnd.dev.sigstore.bundle.v0.3+json",
	"application/vnd.cncf.notary.signature",
	"application/spdx+json",
	"application/vnd.in-toto+json",
	"application/vnd.dev.cosign.artifact.sig.v1+json",
}

// refSubjects are the subjects pushed to the upstream: one hot subject, the many-subject set (both
// with Referrers referrers each) and the cold ones (two each).
type refSubjects struct {
	repo    string
	hot     digest.Digest
	hotWant []digest.Digest // the hot subject's referrers as the upstream lists them
	many    []digest.Digest
	cold    []digest.Digest
}

// variantSpec is a Berth configuration of the referrers scenario.
type variantSpec struct {
	name  string
	redis bool // on Redis (the run's URL, a key prefix of its own)
	cold  bool // also measure cold latency
	args  []string
}

// RunReferrers starts go-containerregistry's registry with the referrers API as the upstream, pushes
// the subjects (refSubjects), and measures a Berth with the in-process cache, then (when Redis
// answers) a Berth on Redis with the node cache at its default and one with it off.
func (r *Runner) RunReferrers(ctx context.Context) (res ReferrersResult, err error) {
	cfg := r.Cfg
	up, upURL, err := startChild(ctx, cfg.Self, r.dir, r.cpus, ModeGGCR)
	if err != nil {
		return res, err
	}
	defer r.stopProc(up, &err)
	upReg := &Registry{URL: upURL, Client: newClient()}
	defer upReg.Client.CloseIdleConnections()
	subj, err := pushSubjects(ctx, upReg, cfg)
	if err != nil {
		return res, err
	}
	res.Subjects = len(subj.many)

	specs := []variantSpec{{name: "in-process cache", cold: true}}
	switch {
	case cfg.RedisURL == "":
		res.RedisSkip = "not asked (-redis-url empty)"
	case redisReachable(cfg.RedisURL) != "":
		res.RedisSkip = redisReachable(cfg.RedisURL)
		r.progress("  referrers: Redis skipped: %s", res.RedisSkip)
	default:
		specs = append(specs,
			variantSpec{name: "Redis, node cache 1s", redis: true, cold: true, args: []string{"--referrers-node-cache", "1s"}},
			variantSpec{name: "Redis, node cache off", redis: true, args: []string{"--referrers-node-cache", "0s"}})
	}
	for i, spec := range specs {
		v, err := r.referrersVariant(ctx, spec, upReg, subj, i)
		if v.Name != "" {
			res.Variants = append(res.Variants, v)
		}
		if i == 0 && len(v.Hot.Berth) > 0 {
			res.Referrers, res.IndexSize = len(subj.hotWant), v.indexSize
		}
		if err != nil {
			return res, fmt.Errorf("%s: %w", spec.name, err)
		}
	}
	if res.DiskLayer, err = r.referrersDiskLayer(ctx, upReg, subj.repo, subj.hot, subj.hotWant); err != nil {
		return res, fmt.Errorf("persistent layer: %w", err)
	}
	return res, nil
}

// pushSubjects pushes the scenario's subjects and their referrers to the upstream.
func pushSubjects(ctx context.Context, upReg *Registry, cfg Config) (s refSubjects, err error) {
	s.repo = "lib/app"
	push := func(tag string, seed uint64, referrers int) (digest.Digest, error) {
		layer, err := upReg.PushBytes(ctx, s.repo, NewContent(seed, 1024).Bytes())
		if err != nil {
			return "", err
		}
		subj, _, err := upReg.PushImage(ctx, s.repo, tag, layer)
		if err != nil {
			return "", err
		}
		for i := range referrers {
			if _, err := upReg.PushReferrer(ctx, s.repo, subj, artifactTypes[i%len(artifactTypes)], seed*1000+uint64(i)); err != nil {
				return "", err
			}
		}
		return subj.Digest, nil
	}
	if s.hot, err = push("v1", 7, cfg.Referrers); err != nil {
		return s, fmt.Errorf("push to upstream: %w", err)
	}
	for i := range cfg.WarmSubjects {
		d, err := push("w"+strconv.Itoa(i), uint64(20_000+i), cfg.Referrers)
		if err != nil {
			return s, fmt.Errorf("push to upstream: %w", err)
		}
		s.many = append(s.many, d)
	}
	for i := range cfg.ColdSubjects {
		d, err := push("c"+strconv.Itoa(i), uint64(10_000+i), 2)
		if err != nil {
			return s, fmt.Errorf("push to upstream: %w", err)
		}
		s.cold = append(s.cold, d)
	}
	if s.hotWant, err = referrerDigests(ctx, upReg, upReg.URL+"/v2/"+s.repo+"/referrers/"+s.hot.String()); err != nil {
		return s, err
	}
	if len(s.hotWant) != cfg.Referrers {
		return s, fmt.Errorf("upstream lists %d referrers, pushed %d", len(s.hotWant), cfg.Referrers)
	}
	return s, nil
}

// coldLatency times one referrers GET per subject through Berth and directly, alternating which goes
// first, on keep-alive connections warmed beforehand. Every Berth answer must be a MISS (checkCold):
// the run fails otherwise.
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
				c.Cache[hdr.Get("X-Cache")]++
				if err := checkCold(d, hdr); err != nil {
					return c, err
				}
				c.Berth = append(c.Berth, el)
			} else {
				el, _, err := timed(upstream, upRepo+"/referrers/"+d.String())
				if err != nil {
					return c, err
				}
				c.Direct = append(c.Direct, el)
			}
		}
	}
	return c, nil
}

// Sorted returns a sorted copy of ds (for percentiles).
func Sorted(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

// Ratio is the median of the per-subject latency ratios Berth / direct, with their range.
func (c Cold) Ratio() Ratios {
	b, d := make([]float64, len(c.Berth)), make([]float64, len(c.Direct))
	for i, x := range c.Berth {
		b[i] = x.Seconds()
	}
	for i, x := range c.Direct {
		d[i] = x.Seconds()
	}
	return pairedRatios(b, d)
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

// checkRedisEmpty fails when any key exists under prefix: a run's keys must be its own.
func checkRedisEmpty(ctx context.Context, rawURL, prefix string) error {
	c, err := cache.NewRedisClient(rawURL)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator() // SCAN pages until the whole keyspace is covered
	if iter.Next(ctx) {
		return fmt.Errorf("redis already holds keys under %s (%s...)", prefix, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// deleteRedisPrefix removes every key under prefix and returns how many it removed.
func deleteRedisPrefix(ctx context.Context, rawURL, prefix string) (int, error) {
	c, err := cache.NewRedisClient(rawURL)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	n := 0
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			return n, fmt.Errorf("redis: %w", err)
		}
		n++
	}
	return n, iter.Err()
}
