package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
)

// warmSampleEvery is how often each connection of a warm trial reads X-Cache (its first answer
// included): often enough that a trial served by another path than the cache fails, rarely enough to
// cost nothing measurable.
const warmSampleEvery = 50

// warmTarget is one warm path with the bytes Berth answered for it.
type warmTarget struct {
	path string
	body []byte
}

// referrersVariant measures one Berth configuration: first request, warm hot and many-subject trials
// against a bare server with the same bytes, then (spec.cold) cold latency. A Redis variant writes under
// a key prefix of its own, checked empty before and removed after.
func (r *Runner) referrersVariant(ctx context.Context, spec variantSpec, upReg *Registry, s refSubjects, idx int) (v ReferrersVariant, err error) {
	v.Name = spec.name
	args := slices.Clone(spec.args)
	if spec.redis {
		v.RedisPrefix = "berthbench:" + r.runID + ":" + strconv.Itoa(idx) + ":"
		if err := checkRedisEmpty(ctx, r.Cfg.RedisURL, v.RedisPrefix); err != nil {
			return v, err
		}
		defer func() {
			n, cerr := deleteRedisPrefix(context.WithoutCancel(ctx), r.Cfg.RedisURL, v.RedisPrefix)
			r.progress("  referrers (%s): removed %d Redis keys under %s", spec.name, n, v.RedisPrefix)
			if cerr != nil && err == nil {
				err = fmt.Errorf("removing the run's Redis keys: %w", cerr)
			}
		}()
		args = append(args, "--redis-url", r.Cfg.RedisURL, "--redis-key-prefix", v.RedisPrefix)
	}
	b, err := r.startBerth(ctx, args...)
	if err != nil {
		return v, err
	}
	defer r.stopBerth(b, &err) // before the Redis keys are removed (defers run last-first)
	if err := b.ProxyProjectMeta(ctx, "px", upReg.URL, map[string]string{
		"proxy_referrer_api": "true", "proxy_referrer_cache_seconds": warmFreshness}); err != nil {
		return v, err
	}
	anon := &Registry{URL: b.URL, Client: newClient()}
	defer anon.Client.CloseIdleConnections()

	hot, many, err := r.fillWarm(ctx, anon, s, &v)
	if err != nil {
		return v, err
	}
	v.indexSize = len(hot.body)
	if err := r.warmTrials(ctx, b, upReg, hot, many, &v); err != nil {
		return v, err
	}
	if spec.cold {
		r.progress("referrers (%s): cold latency, %d subjects", spec.name, len(s.cold))
		v.Cold, err = coldLatency(ctx, anon, upReg, b.URL+"/v2/px/"+s.repo, upReg.URL+"/v2/"+s.repo, s.cold)
	}
	return v, err
}

// fillWarm asks Berth once for every warm subject (each must be a cold MISS, and the hot one must list
// what the upstream lists), timing the first request, and returns the paths with Berth's answers.
func (r *Runner) fillWarm(ctx context.Context, anon *Registry, s refSubjects, v *ReferrersVariant) (hot warmTarget, many []warmTarget, err error) {
	get := func(d digest.Digest, want int) (warmTarget, error) {
		t := warmTarget{path: "/v2/px/" + s.repo + "/referrers/" + d.String()}
		status, hdr, body, err := anon.Get(ctx, anon.URL+t.path, indexAccept)
		if err != nil {
			return t, fmt.Errorf("GET %s: %w", t.path, err)
		}
		if status != http.StatusOK {
			return t, fmt.Errorf("GET %s: status %d: %.300s", t.path, status, body)
		}
		if err := checkCold(d, hdr); err != nil {
			return t, err
		}
		ds, err := indexDigests(body)
		if err != nil {
			return t, err
		}
		if len(ds) != want {
			return t, fmt.Errorf("GET %s: %d referrers, want %d", t.path, len(ds), want)
		}
		t.body = body
		return t, nil
	}
	t0 := time.Now()
	if hot, err = get(s.hot, len(s.hotWant)); err != nil {
		return hot, nil, err
	}
	v.First = time.Since(t0)
	if got, _ := indexDigests(hot.body); !slices.Equal(got, s.hotWant) {
		return hot, nil, fmt.Errorf("berth lists referrers %v, the upstream %v", got, s.hotWant)
	}
	for _, d := range s.many {
		t, err := get(d, len(s.hotWant))
		if err != nil {
			return hot, many, err
		}
		many = append(many, t)
	}
	return hot, many, nil
}

// warmTrials starts a bare server with Berth's bytes under the same paths and compares warm GETs of
// the hot subject, then of the many subjects. Every 50th answer of each Berth connection must carry
// X-Cache: HIT.
func (r *Runner) warmTrials(ctx context.Context, b *Berth, upReg *Registry, hot warmTarget, many []warmTarget, v *ReferrersVariant) (err error) {
	routes := make([]Route, 0, 1+len(many))
	for i, t := range append([]warmTarget{hot}, many...) {
		file := filepath.Join(r.dir, "referrers-"+strconv.Itoa(b.Pid())+"-"+strconv.Itoa(i)+".json")
		if err := os.WriteFile(file, t.body, 0o600); err != nil {
			return err
		}
		routes = append(routes, Route{Path: t.path, ContentType: "application/vnd.oci.image.index.v1+json", File: file})
	}
	bare, bareURL, err := r.startBare(ctx, routes)
	if err != nil {
		return err
	}
	defer r.stopProc(bare, &err)
	_, _, bb, err := b.Get(ctx, bareURL+hot.path, nil)
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	if !bytes.Equal(bb, hot.body) {
		return errors.New("the bare server does not serve Berth's bytes")
	}
	if err := upReg.ResetStats(ctx); err != nil {
		return err
	}
	load := func(base string, pid int, ts []warmTarget) Load {
		l := Load{Conns: r.Cfg.RefConns, Header: indexAccept, ServerPid: pid}
		for _, t := range ts {
			l.Targets = append(l.Targets, Target{URL: base + t.path, Bytes: int64(len(t.body))})
		}
		l.URL = l.Targets[0].URL
		if base == b.URL {
			l.SampleHeader, l.SampleEvery, l.WantSample = "X-Cache", warmSampleEvery, []string{"HIT"}
		}
		return l
	}
	r.progress("referrers (%s): warm GET of one subject, %d connections", v.Name, r.Cfg.RefConns)
	if v.Hot, err = r.plan().Compare(ctx, "warm referrers GET, one subject ("+v.Name+")",
		load(b.URL, b.Pid(), []warmTarget{hot}), load(bareURL, bare.Pid(), []warmTarget{hot}), "ratio >= 0.6, p99 < 5 ms"); err != nil {
		return err
	}
	if len(many) == 0 {
		return nil
	}
	r.progress("referrers (%s): warm GET of %d subjects, %d connections", v.Name, len(many), r.Cfg.RefConns)
	if v.Many, err = r.plan().Compare(ctx, fmt.Sprintf("warm referrers GET, %d subjects (%s)", len(many), v.Name),
		load(b.URL, b.Pid(), many), load(bareURL, bare.Pid(), many), ""); err != nil {
		return err
	}
	st, err := upReg.Stats(ctx)
	v.UpstreamDuringWarm = st.Referrers
	return err
}

// checkCold returns an error unless hdr is the answer to a request Berth had no cache entry for
// (X-Cache: MISS): a "cold" figure served from a cache is not a cold figure.
func checkCold(subject digest.Digest, hdr http.Header) error {
	if got := hdr.Get("X-Cache"); got != "MISS" {
		return fmt.Errorf("the cold request for %s was answered X-Cache %q, want MISS (a cache entry from before the request?)", subject, got)
	}
	return nil
}
