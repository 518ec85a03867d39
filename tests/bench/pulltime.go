package bench

import (
	"context"
	"fmt"
)

// PullTimeResult is issue 11's bookkeeping figure: warm manifest GETs by tag on a Berth that records
// pull times (pull_time_tracking on, the default) against one that does not, the same image in each.
type PullTimeResult struct {
	Manifest Comparison
}

// pullTimeTarget is what issue 11 allows the bookkeeping to cost: under 5% of warm manifest GET req/s.
const pullTimeTarget = ">= 0.95"

// RunPullTime starts two Berths, one with pull-time tracking and one without, pushes the same image
// into each and compares warm manifest GETs by tag (every GET records a pull on the first).
func (r *Runner) RunPullTime(ctx context.Context) (res PullTimeResult, err error) {
	var loads [2]Load
	var bodies [2][]byte
	for i, args := range [][]string{nil, {"--pull-time-tracking=false"}} {
		b, serr := r.startBerth(ctx, args...)
		if serr != nil {
			return res, serr
		}
		defer r.stopBerth(b, &err)
		u, body, perr := pullTimeImage(ctx, b)
		if perr != nil {
			return res, perr
		}
		bodies[i] = body
		loads[i] = Load{URL: u, Conns: r.Cfg.ManifestConns, WantBytes: int64(len(body)), Header: manifestAccept, ServerPid: b.Pid()}
	}
	if string(bodies[0]) != string(bodies[1]) {
		return res, fmt.Errorf("pulltime: the two Berths serve different manifests")
	}
	r.progress("pulltime: manifest GET by tag, tracking on vs off, %d connections", r.Cfg.ManifestConns)
	res.Manifest, err = r.plan().Compare(ctx, "manifest GET by tag, pull-time tracking on vs off", loads[0], loads[1], pullTimeTarget)
	return res, err
}

// pullTimeImage pushes the scenario's image into b and returns its manifest URL by tag and its bytes.
func pullTimeImage(ctx context.Context, b *Berth) (string, []byte, error) {
	const repo = "bench/app"
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil {
		return "", nil, err
	}
	layer, err := b.PushBytes(ctx, repo, []byte("pull-time bench layer"))
	if err != nil {
		return "", nil, err
	}
	mdesc, mbody, err := b.PushImage(ctx, repo, "v1", layer)
	if err != nil {
		return "", nil, err
	}
	u := b.URL + "/v2/" + repo + "/manifests/v1"
	return u, mbody, verifyDigest(ctx, u, mdesc.Digest)
}

func (r *Report) pullTimeRows() []summaryRow {
	x := r.PullTime
	if x == nil || len(x.Manifest.Berth) == 0 {
		return nil
	}
	return reqRows(fmt.Sprintf("Warm manifest GET by tag with pull-time tracking (vs off), %d connections", x.Manifest.Conns), "",
		x.Manifest, pullTimeTarget, func(x Ratios) bool { return x.Med >= 0.95 }, false, 0)
}
