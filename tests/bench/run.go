package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config is a run's settings (berthbench flags).
type Config struct {
	BerthBin string // bin/berth
	Self     string // the berthbench binary, re-executed for the child servers
	TempDir  string // parent of the run's temporary directory ("" = os.TempDir())

	Rounds      int           // interleaved rounds per comparison
	Trial       time.Duration // length of one trial
	Warmup      time.Duration // discarded trial per target before the rounds
	MaxRequests int64         // cap on requests per trial

	BlobSize      int64 // issue 2: blob GET size
	BlobConns     int
	ManifestConns int

	ProxyBlobSize int64 // issue 3: cold pull size
	ProxyRounds   int   // cold single pulls per target (each through a fresh Berth)
	Pullers       int   // concurrent cold pullers
	// ProxyLimitedRate repeats the cold pulls with the upstream sending at this many bytes/s (0 = skip).
	ProxyLimitedRate int64

	RefConns     int    // issue 4: warm referrers connections
	Referrers    int    // referrers of each warm subject
	WarmSubjects int    // subjects of the many-subject warm runs (0 = only the hot subject)
	ColdSubjects int    // cold referrers samples per target
	RedisURL     string // also measure warm/cold referrers with Berth on this Redis ("" = skip)

	Scenarios []string // any of core, proxy, referrers, mirror, console, hardening, token, storage, retention, gc, pulltime ("" = all)
	// VersityGW is the S3 server of the storage scenario (issue 13); empty = that scenario fails.
	VersityGW string
	// GCBlobs is how many blobs the gc scenario collects over (half referenced, half garbage).
	GCBlobs int
	// ServerCPUs and ClientCPUs, when set, split the CPUs for the request-rate figures (core, referrers):
	// their servers run on ServerCPUs ("1", "1-3"; through taskset) and this process, the clients, on
	// ClientCPUs (default "0"), so that each side has its own cores instead of 64 goroutines of client and
	// server taking turns on the same ones. The cold pulls run unpinned. Empty ServerCPUs: no pinning.
	ServerCPUs string
	ClientCPUs string
	// BerthArgs are appended to every measured Berth's serve arguments (e.g. --debug-addr to profile it).
	BerthArgs []string
	Progress  io.Writer `json:"-"`
}

// DefaultConfig is what scripts/bench.sh runs: a few minutes on a 2-core machine.
func DefaultConfig() Config {
	return Config{
		Rounds: 5, Trial: 3 * time.Second, Warmup: time.Second, MaxRequests: 2_000_000,
		BlobSize: 64 << 20, BlobConns: 4, ManifestConns: 16,
		ProxyBlobSize: 512 << 20, ProxyRounds: 3, Pullers: 10, ProxyLimitedRate: 125_000_000, // 1 Gbit/s
		RefConns: 32, Referrers: 5, WarmSubjects: 100, ColdSubjects: 40, RedisURL: "redis://127.0.0.1:6379/0",
		GCBlobs: 100_000,
	}
}

// Runner runs scenarios with one temporary directory.
type Runner struct {
	Cfg   Config
	dir   string
	cpus  string // the CPUs of the servers the running scenario starts ("" = not pinned)
	runID string // random, names what the run leaves in shared services (Redis key prefixes)
}

// NewRunner creates the run's temporary directory; Close removes it.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.BerthBin == "" || cfg.Self == "" {
		return nil, errors.New("bench: BerthBin and Self are required")
	}
	if fi, err := os.Stat(cfg.BerthBin); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("bench: berth binary %s: not a file (build it with make build)", cfg.BerthBin)
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "berthbench-")
	if err != nil {
		return nil, err
	}
	id := make([]byte, 6)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	return &Runner{Cfg: cfg, dir: dir, runID: hex.EncodeToString(id)}, nil
}

// Close removes the temporary directory (data dirs, logs, route files).
func (r *Runner) Close() error { return os.RemoveAll(r.dir) }

// Dir is the run's temporary directory.
func (r *Runner) Dir() string { return r.dir }

func (r *Runner) progress(format string, args ...any) {
	if r.Cfg.Progress != nil {
		_, _ = fmt.Fprintf(r.Cfg.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

func (r *Runner) plan() Plan {
	return Plan{Rounds: r.Cfg.Rounds, Trial: r.Cfg.Trial, Warmup: r.Cfg.Warmup, MaxRequests: r.Cfg.MaxRequests, Progress: r.progress}
}

// berthArgs are the serve arguments every measured Berth gets beyond listen, data dir and password:
// a short referrers cache TTL so that a run leaves nothing long-lived in a shared Redis.
var berthArgs = []string{"--referrers-cache-ttl", "15m"}

func (r *Runner) startBerth(ctx context.Context, extra ...string) (*Berth, error) {
	args := append(append(append([]string{}, berthArgs...), extra...), r.Cfg.BerthArgs...)
	return StartBerth(ctx, r.Cfg.BerthBin, r.dir, r.cpus, args...)
}

// stopBerth stops b; an unclean stop becomes the scenario's error when it has none yet. The log of a
// failed scenario is kept and named.
func (r *Runner) stopBerth(b *Berth, err *error) {
	failed := *err != nil && !errors.Is(*err, context.Canceled)
	if failed {
		keep := filepath.Join(os.TempDir(), "berthbench-failed-"+strconv.Itoa(os.Getpid())+".log")
		if os.Rename(b.LogPath, keep) == nil {
			r.progress("berth log kept at %s", keep)
		}
	}
	if serr := b.Stop(failed); serr != nil && *err == nil {
		*err = fmt.Errorf("stopping berth: %w", serr)
	}
}

func (r *Runner) stopProc(p *Proc, err *error) {
	if serr := p.Stop(); serr != nil && *err == nil {
		*err = fmt.Errorf("stopping %s: %w", p.Name, serr)
	}
}

// startBare starts a bare server child serving routes.
func (r *Runner) startBare(ctx context.Context, routes []Route) (*Proc, string, error) {
	f, err := os.CreateTemp(r.dir, "routes-*.json")
	if err != nil {
		return nil, "", err
	}
	_ = f.Close()
	if err := writeRoutes(f.Name(), routes); err != nil {
		return nil, "", err
	}
	return startChild(ctx, r.Cfg.Self, r.dir, r.cpus, ModeBare, "-routes", f.Name())
}

// pin splits the CPUs between this process and the servers it starts next (split, when ServerCPUs is
// set), or gives both every CPU.
func (r *Runner) pin(split bool) error {
	if r.Cfg.ServerCPUs == "" {
		return nil
	}
	if !split {
		r.cpus = ""
		return setOwnCPUs(allCPUList())
	}
	r.cpus = r.Cfg.ServerCPUs
	return setOwnCPUs(cmpStr(r.Cfg.ClientCPUs, "0"))
}

// Run runs the configured scenarios and returns the report; a scenario that fails is recorded in the
// report (Errors) and the others still run.
func (r *Runner) Run(ctx context.Context) *Report {
	rep := NewReport(r.Cfg)
	want := func(s string) bool {
		if len(r.Cfg.Scenarios) == 0 {
			return true
		}
		for _, x := range r.Cfg.Scenarios {
			if x == s {
				return true
			}
		}
		return false
	}
	if want("core") {
		r.progress("scenario core (issue 2)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunCore(ctx)
		rep.Core = &res
		rep.fail("core", err)
	}
	if want("proxy") && ctx.Err() == nil {
		r.progress("scenario proxy (issue 3)")
		rep.fail("pin", r.pin(false))
		res, err := r.RunProxy(ctx)
		rep.Proxy = &res
		rep.fail("proxy", err)
	}
	if want("referrers") && ctx.Err() == nil {
		r.progress("scenario referrers (issue 4)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunReferrers(ctx)
		rep.Referrers = &res
		rep.fail("referrers", err)
	}
	if want("mirror") && ctx.Err() == nil {
		r.progress("scenario mirror (issue 10)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunMirror(ctx)
		rep.Mirror = &res
		rep.fail("mirror", err)
	}
	if want("console") && ctx.Err() == nil {
		r.progress("scenario console (issue 14)")
		rep.fail("pin", r.pin(false))
		res, err := r.RunConsole(ctx)
		rep.Console = &res
		rep.fail("console", err)
	}
	if want("hardening") && ctx.Err() == nil {
		r.progress("scenario hardening (issue 8)")
		rep.fail("pin", r.pin(false))
		res, err := r.RunHardening(ctx)
		rep.Hardening = &res
		rep.fail("hardening", err)
	}
	if want("token") && ctx.Err() == nil {
		r.progress("scenario token (issue 12)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunToken(ctx)
		rep.Token = &res
		rep.fail("token", err)
	}
	if want("storage") && ctx.Err() == nil {
		r.progress("scenario storage (issue 13)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunStorage(ctx)
		rep.Storage = &res
		rep.fail("storage", err)
	}
	if want("retention") && ctx.Err() == nil {
		r.progress("scenario retention (issue 11)")
		rep.fail("pin", r.pin(false))
		res, err := r.RunRetention(ctx)
		rep.Retention = &res
		rep.fail("retention", err)
	}
	if want("gc") && ctx.Err() == nil {
		r.progress("scenario gc (issue 11)")
		rep.fail("pin", r.pin(false))
		res, err := r.RunGC(ctx)
		rep.GC = &res
		rep.fail("gc", err)
	}
	if want("pulltime") && ctx.Err() == nil {
		r.progress("scenario pulltime (issue 11)")
		rep.fail("pin", r.pin(true))
		res, err := r.RunPullTime(ctx)
		rep.PullTime = &res
		rep.fail("pulltime", err)
	}
	if ctx.Err() != nil {
		rep.fail("run", ctx.Err())
	}
	rep.Finish()
	return rep
}
