package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/opencontainers/go-digest"
)

// referrersDiskLayer measures issue 15's cost of the persistent referrers cache layer: warm referrers
// GETs through the embedded default as it ships (process memory in front of
// <data-dir>/referrers-cache.db) against the same Berth with --referrers-disk-cache-max-bytes 0 (memory
// only), interleaved in one run. Comparison.Berth is the persistent layer, Comparison.Base memory only.
func (r *Runner) referrersDiskLayer(ctx context.Context, upReg *Registry, repo string, warm digest.Digest, want []digest.Digest) (c Comparison, err error) {
	with, err := r.startBerth(ctx)
	if err != nil {
		return c, err
	}
	defer r.stopBerth(with, &err)
	without, err := r.startBerth(ctx, "--referrers-disk-cache-max-bytes", "0")
	if err != nil {
		return c, err
	}
	defer r.stopBerth(without, &err)
	path := "/v2/px/" + repo + "/referrers/" + warm.String()
	anon := &Registry{Client: newClient()}
	defer anon.Client.CloseIdleConnections()
	sizes := make([]int64, 2)
	for i, b := range []*Berth{with, without} {
		if err := b.ProxyProjectMeta(ctx, "px", upReg.URL, map[string]string{"proxy_referrer_api": "true", "proxy_referrer_cache_seconds": warmFreshness}); err != nil {
			return c, err
		}
		if _, err := referrerDigests(ctx, anon, b.URL+path); err != nil { // fills the cache
			return c, err
		}
		status, hdr, body, err := anon.Get(ctx, b.URL+path, indexAccept)
		if err != nil || status != http.StatusOK {
			return c, fmt.Errorf("warm GET %s: status %d: %w", b.URL+path, status, err)
		}
		got, err := indexDigests(body)
		if err != nil {
			return c, err
		}
		if !slices.Equal(got, want) || hdr.Get("X-Cache") != "HIT" {
			return c, fmt.Errorf("warm GET %s: X-Cache %q, referrers %v, want HIT and %v", b.URL+path, hdr.Get("X-Cache"), got, want)
		}
		sizes[i] = int64(len(body))
	}
	r.progress("referrers: warm GET, persistent layer vs memory only, %d connections", r.Cfg.RefConns)
	return r.plan().Compare(ctx, "warm referrers GET (persistent layer vs memory only)",
		Load{URL: with.URL + path, Conns: r.Cfg.RefConns, WantBytes: sizes[0], Header: indexAccept, ServerPid: with.Pid(),
			SampleHeader: "X-Cache", SampleEvery: warmSampleEvery, WantSample: []string{"HIT"}},
		Load{URL: without.URL + path, Conns: r.Cfg.RefConns, WantBytes: sizes[1], Header: indexAccept, ServerPid: without.Pid(),
			SampleHeader: "X-Cache", SampleEvery: warmSampleEvery, WantSample: []string{"HIT"}}, "ratio >= 0.9")
}
