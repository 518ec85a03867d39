// Command berthbench measures bin/berth against baselines on loopback and writes the figures to
// docs/performance.md (see package bench). scripts/bench.sh builds and runs it:
//
//	berthbench -berth bin/berth -doc docs/performance.md [-rounds 5 -trial 3s ...]
//
// It also serves as its own child servers ("berthbench child <mode>"), which the run starts and stops.
// The run stops by itself: every trial is time-capped and -timeout bounds the whole run; SIGINT or
// SIGTERM stops it early, children and temporary directories included. Exit status 1 when a scenario
// failed, 0 otherwise (missed targets are reported, not failures).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-registry/berth/tests/bench"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "child" {
		if err := bench.RunChild(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "berthbench child:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func run() int {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("berthbench", flag.ContinueOnError)
	fs.StringVar(&cfg.BerthBin, "berth", "bin/berth", "the server binary")
	doc := fs.String("doc", "", "markdown file to write the figures into (between berthbench markers); empty = stdout only")
	jsonOut := fs.String("json", "", "also write the raw results as JSON to this file")
	timeout := fs.Duration("timeout", 45*time.Minute, "bound on the whole run (a full run takes about 20 minutes on a quiet 2-CPU machine, longer on a loaded one)")
	scenarios := fs.String("scenarios", "", "comma-separated subset of core,proxy,referrers,mirror,console,hardening,token,storage,retention,gc,pulltime (default all)")
	fs.StringVar(&cfg.VersityGW, "versitygw", "", "versitygw binary, the S3 server of the storage scenario")
	quick := fs.Bool("quick", false, "a smoke run: 1 round of 1s, 64 MiB proxy blob, few samples (figures not meaningful)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "interleaved rounds per comparison")
	fs.DurationVar(&cfg.Trial, "trial", cfg.Trial, "length of one trial")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "discarded warm-up trial per target")
	fs.Int64Var(&cfg.MaxRequests, "max-requests", cfg.MaxRequests, "cap on requests per trial")
	fs.Int64Var(&cfg.BlobSize, "blob-size", cfg.BlobSize, "blob GET size in bytes")
	fs.IntVar(&cfg.BlobConns, "blob-conns", cfg.BlobConns, "blob GET connections")
	fs.IntVar(&cfg.ManifestConns, "manifest-conns", cfg.ManifestConns, "manifest GET connections")
	fs.Int64Var(&cfg.ProxyBlobSize, "proxy-blob-size", cfg.ProxyBlobSize, "cold pull blob size in bytes")
	fs.IntVar(&cfg.ProxyRounds, "proxy-rounds", cfg.ProxyRounds, "cold single pulls per target")
	fs.IntVar(&cfg.Pullers, "pullers", cfg.Pullers, "concurrent cold pullers")
	fs.Int64Var(&cfg.ProxyLimitedRate, "proxy-limited-rate", cfg.ProxyLimitedRate, "bytes/s of the paced-upstream cold pulls shown for context (0 = skip)")
	fs.IntVar(&cfg.RefConns, "referrers-conns", cfg.RefConns, "warm referrers connections")
	fs.IntVar(&cfg.Referrers, "referrers", cfg.Referrers, "referrers of each warm subject")
	fs.IntVar(&cfg.WarmSubjects, "warm-subjects", cfg.WarmSubjects, "subjects of the many-subject warm referrers runs (0 = skip them)")
	fs.IntVar(&cfg.ColdSubjects, "cold-subjects", cfg.ColdSubjects, "cold referrers samples per target")
	fs.StringVar(&cfg.RedisURL, "redis-url", cfg.RedisURL, "Redis for the Redis variants of the referrers figures, each under a key prefix of its own, removed after it (empty = skip)")
	fs.IntVar(&cfg.GCBlobs, "gc-blobs", cfg.GCBlobs, "blobs of the gc scenario (half referenced by manifests, half garbage)")
	fs.StringVar(&cfg.TempDir, "tmp", "", "parent of the run's temporary directory (default $TMPDIR)")
	fs.StringVar(&cfg.ServerCPUs, "server-cpus", "", "CPU list the servers of the request-rate figures run on (taskset), e.g. 1; empty = no pinning")
	fs.StringVar(&cfg.ClientCPUs, "client-cpus", "0", "CPU list the clients run on during the request-rate figures (with -server-cpus)")
	fs.Func("berth-arg", "an extra serve argument for every measured Berth, repeatable (e.g. -berth-arg=--debug-addr=127.0.0.1:6060)",
		func(v string) error { cfg.BerthArgs = append(cfg.BerthArgs, v); return nil })
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *quick {
		cfg.Rounds, cfg.Trial, cfg.Warmup = 1, time.Second, 300*time.Millisecond
		cfg.ProxyBlobSize, cfg.ProxyRounds, cfg.Pullers, cfg.ColdSubjects, cfg.WarmSubjects = 64<<20, 1, 4, 5, 10
		cfg.GCBlobs = 2000
	}
	if *scenarios != "" {
		cfg.Scenarios = strings.Split(*scenarios, ",")
	}
	var err error
	if cfg.BerthBin, err = filepath.Abs(cfg.BerthBin); err != nil {
		return fail(err)
	}
	if cfg.Self, err = os.Executable(); err != nil {
		return fail(err)
	}
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	r, err := bench.NewRunner(cfg)
	if err != nil {
		return fail(err)
	}
	rep := r.Run(ctx)
	if err := r.Close(); err != nil {
		rep.Errors = append(rep.Errors, "cleanup: "+err.Error())
	}
	md := rep.Markdown()
	fmt.Println(md)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return fail(err)
		}
	}
	switch {
	case *doc == "":
	case errors.Is(ctx.Err(), context.Canceled):
		fmt.Fprintln(os.Stderr, "berthbench: interrupted; not writing", *doc)
	case *quick:
		fmt.Fprintln(os.Stderr, "berthbench: -quick figures are not written to", *doc)
	default:
		if err := bench.UpdateDoc(*doc, md); err != nil {
			return fail(err)
		}
		fmt.Fprintln(os.Stderr, "berthbench: figures written to", *doc)
	}
	if missed := rep.TargetsMissed(); len(missed) > 0 {
		fmt.Fprintln(os.Stderr, "berthbench: targets missed:\n  "+strings.Join(missed, "\n  "))
	}
	if rep.Failed() {
		fmt.Fprintln(os.Stderr, "berthbench: failures:\n  "+strings.Join(rep.Errors, "\n  "))
		return 1
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "berthbench:", err)
	return 1
}
