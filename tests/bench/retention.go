package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// The retention scenario (issue 11): a retention run over retentionArtifacts artifacts in
// retentionRepos repositories, keeping the latest retentionKeep pushed per repository.
const (
	retentionArtifacts = 10000
	retentionRepos     = 10
	retentionKeep      = 100
)

// RetentionResult is issue 11's figure: the time of one retention execution over Artifacts artifacts
// that removes Removed of them, and Berth's peak RSS during it.
type RetentionResult struct {
	Artifacts, Removed int
	Duration           time.Duration
	PeakRSS            int64 // VmHWM, reset just before the run
	IdleRSS            int64 // VmRSS before the run
}

// RunRetention pushes the artifacts (one layer and config per repository, manifests told apart by an
// annotation), creates a policy and runs it once.
func (r *Runner) RunRetention(ctx context.Context) (res RetentionResult, err error) {
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil {
		return res, err
	}
	r.progress("retention: pushing %d artifacts in %d repositories", retentionArtifacts, retentionRepos)
	if err := pushRetentionSet(ctx, &b.Registry); err != nil {
		return res, err
	}
	pid, err := projectID(ctx, b, "bench")
	if err != nil {
		return res, err
	}
	policy, _ := json.Marshal(map[string]any{
		"algorithm": "or",
		"rules": []any{map[string]any{"action": "retain", "template": "latestPushedK",
			"params":          map[string]any{"latestPushedK": retentionKeep},
			"tag_selectors":   []any{map[string]any{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": `{"untagged":true}`}},
			"scope_selectors": map[string]any{"repository": []any{map[string]any{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}}}}},
		"scope": map[string]any{"level": "project", "ref": pid},
	})
	hdr, _, err := b.call(ctx, http.MethodPost, b.URL+"/api/v2.0/retentions", http.Header{"Content-Type": {"application/json"}}, policy, http.StatusCreated)
	if err != nil {
		return res, fmt.Errorf("create policy: %w", err)
	}
	execs := b.URL + hdr.Get("Location") + "/executions"
	mem, err := ReadMemory(b.Pid())
	if err != nil {
		return res, err
	}
	res.IdleRSS = mem.RSS
	if err := ResetPeak(b.Pid()); err != nil {
		return res, err
	}
	r.progress("retention: running the policy")
	start := time.Now()
	if _, _, err := b.call(ctx, http.MethodPost, execs, http.Header{"Content-Type": {"application/json"}}, []byte(`{"dry_run":false}`), http.StatusCreated); err != nil {
		return res, fmt.Errorf("start execution: %w", err)
	}
	eid, err := waitExecution(ctx, b, execs)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	if mem, err = ReadMemory(b.Pid()); err != nil {
		return res, err
	}
	res.PeakRSS = mem.Peak
	// The counts come from the execution's own tasks, checked against what the policy must do.
	_, body, err := b.call(ctx, http.MethodGet, fmt.Sprintf("%s/%d/tasks?page_size=100", execs, eid), nil, nil, http.StatusOK)
	if err != nil {
		return res, err
	}
	var tasks []struct{ Total, Retained int }
	if err := json.Unmarshal(body, &tasks); err != nil {
		return res, fmt.Errorf("tasks: %w", err)
	}
	for _, t := range tasks {
		res.Artifacts += t.Total
		res.Removed += t.Total - t.Retained
	}
	if res.Artifacts != retentionArtifacts || res.Removed != retentionArtifacts-retentionRepos*retentionKeep {
		return res, fmt.Errorf("retention considered %d artifacts and removed %d, want %d and %d",
			res.Artifacts, res.Removed, retentionArtifacts, retentionArtifacts-retentionRepos*retentionKeep)
	}
	return res, nil
}

func pushRetentionSet(ctx context.Context, reg *Registry) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for repo := range retentionRepos {
		name := fmt.Sprintf("bench/app%d", repo)
		layer, err := reg.PushBytes(ctx, name, []byte(name))
		if err != nil {
			return err
		}
		layer.MediaType = ocispec.MediaTypeImageLayer
		cfg, err := reg.PushBytes(ctx, name, []byte(`{"architecture":"amd64","os":"linux"}`))
		if err != nil {
			return err
		}
		cfg.MediaType = ocispec.MediaTypeImageConfig
		for i := range retentionArtifacts / retentionRepos {
			g.Go(func() error {
				body, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
					MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer},
					Annotations: map[string]string{"dev.berth.bench.n": fmt.Sprint(i)}})
				_, err := reg.PushManifest(ctx, name, fmt.Sprintf("v%d", i), ocispec.MediaTypeImageManifest, body)
				return err
			})
		}
	}
	return g.Wait()
}

func projectID(ctx context.Context, b *Berth, name string) (int64, error) {
	_, _, body, err := b.Get(ctx, b.URL+"/api/v2.0/projects/"+name, http.Header{"X-Is-Resource-Name": {"true"}})
	if err != nil {
		return 0, err
	}
	var p struct {
		ID int64 `json:"project_id"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ID == 0 {
		return 0, fmt.Errorf("project %s: %w (%s)", name, err, body)
	}
	return p.ID, nil
}

// waitExecution polls the newest execution until it is not Running (bounded by ctx and 10 minutes) and
// returns its ID.
func waitExecution(ctx context.Context, b *Berth, execs string) (int64, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		_, body, err := b.call(ctx, http.MethodGet, execs, nil, nil, http.StatusOK)
		if err != nil {
			return 0, err
		}
		var list []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
			return 0, fmt.Errorf("executions: %w (%s)", err, body)
		}
		switch list[0].Status {
		case "Running":
		case "Succeed":
			return list[0].ID, nil
		default:
			return 0, fmt.Errorf("retention execution ended %s", list[0].Status)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("retention execution still running after 10 minutes")
}

// retentionDetail writes the retention section of the report.
func (r *Report) retentionDetail(p printer) {
	x := r.Retention
	if x == nil || x.Artifacts == 0 {
		return
	}
	p("### Retention run (issue 11)\n\n")
	p("One execution of a `latestPushedK` (K = %d) policy over %d artifacts in %d repositories, removing %d\n", retentionKeep, x.Artifacts, retentionRepos, x.Removed)
	p("(metadata only; blobs are left to garbage collection). Time from the POST that starts it to the execution's end as polled;\n")
	p("peak RSS is VmHWM reset just before the run.\n\n")
	p("| Artifacts | Removed | Time | Idle RSS | Peak RSS |\n|---|---|---|---|---|\n")
	p("| %d | %d | %s | %s | %s |\n\n", x.Artifacts, x.Removed, x.Duration.Round(time.Millisecond), MiB(float64(x.IdleRSS)), MiB(float64(x.PeakRSS)))
}
