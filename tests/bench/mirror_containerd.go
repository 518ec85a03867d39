package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ContainerdPulls is issue 10's containerd figures: `ctr content fetch` of one image (Layers x LayerSize)
// through Berth (hosts.toml, per-project form) vs directly from the upstream, warm (Berth's cache holds
// the image) and cold (a fresh Berth per round, so every byte comes from the upstream through Berth).
type ContainerdPulls struct {
	Layers     int
	LayerSize  int64
	Direct     []time.Duration // warm rounds, direct
	Through    []time.Duration // warm rounds, through Berth
	ColdDirect []time.Duration // cold rounds, direct
	Cold       []time.Duration // cold rounds, through a fresh Berth
	// ColdUpstream is what the upstream sent for blob GETs during each cold pull through Berth: every
	// layer and the config, or the round was not cold.
	ColdUpstream []int64
	Skipped      string // why the figures were not measured ("" = measured)
}

// Ratio is the median of the warm per-round ratios direct time / time through Berth (above 1, Berth is
// faster), with their range: each round pulls both ways back to back.
func (c ContainerdPulls) Ratio() Ratios {
	return pairedRatios(seconds(c.Direct), seconds(c.Through))
}

// ColdRatio is Ratio for the cold rounds.
func (c ContainerdPulls) ColdRatio() Ratios {
	return pairedRatios(seconds(c.ColdDirect), seconds(c.Cold))
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

const (
	pullLayers    = 10
	pullLayerSize = 8 << 20
)

// ctrdBench is one containerd pulling one image of a go-containerregistry upstream.
type ctrdBench struct {
	ctr    ctrFunc
	up     *Registry
	upURL  string
	host   string // the upstream's host:port, the registry part of ref
	ref    string
	direct string // hosts dir straight to the upstream
	n      int    // pulls so far: each goes into a namespace of its own
}

// fetch times `ctr content fetch` of the image in a new namespace through the hosts dir hosts. With
// content sharing isolated, a new namespace is a fresh content store: every byte is downloaded.
func (cb *ctrdBench) fetch(ctx context.Context, hosts string) (time.Duration, error) {
	cb.n++
	t0 := time.Now()
	if out, err := cb.ctr(ctx, "-n", "pull"+strconv.Itoa(cb.n), "content", "fetch", "--plain-http", "--hosts-dir", hosts, cb.ref); err != nil {
		return 0, fmt.Errorf("ctr content fetch %s: %w: %s", cb.ref, err, out)
	}
	return time.Since(t0), nil
}

// throughHosts writes a hosts dir that sends the upstream's pulls to Berth's project hub (per-project
// form, override_path) and to nowhere else.
func (cb *ctrdBench) throughHosts(dir string, b *Berth) error {
	return writeHosts(dir, cb.host, fmt.Sprintf("server = \"http://127.0.0.1:1\"\n[host.\"%s/v2/hub\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n", b.URL))
}

// runContainerdPulls pushes a 10 x 8 MiB image into a go-containerregistry upstream and times pulls by
// containerd through Berth and directly, warm then cold. It needs root and the Debian containerd
// package; otherwise it records why it was skipped.
func (r *Runner) runContainerdPulls(ctx context.Context) (res ContainerdPulls, err error) {
	res.Layers, res.LayerSize = pullLayers, pullLayerSize
	bin, errC := exec.LookPath("containerd")
	ctr, errR := exec.LookPath("ctr")
	switch {
	case os.Geteuid() != 0:
		res.Skipped = "not root"
		return res, nil
	case errors.Join(errC, errR) != nil:
		res.Skipped = "containerd not installed (scripts/ensure-services.sh)"
		return res, nil
	}
	up, upURL, err := startChild(ctx, r.Cfg.Self, r.dir, r.cpus, ModeGGCR)
	if err != nil {
		return res, err
	}
	defer r.stopProc(up, &err)
	cb := &ctrdBench{up: &Registry{URL: upURL, Client: newClient()}, upURL: upURL}
	defer cb.up.Client.CloseIdleConnections()
	const repo = "lib/app"
	if err := pushLayeredImage(ctx, cb.up, repo, "v1"); err != nil {
		return res, err
	}
	u, err := url.Parse(upURL)
	if err != nil {
		return res, err
	}
	cb.host, cb.ref = u.Host, u.Host+"/"+repo+":v1"
	cb.direct = filepath.Join(r.dir, "hosts-direct")
	if err := writeHosts(cb.direct, u.Host, fmt.Sprintf("server = %q\n", upURL)); err != nil {
		return res, err
	}
	c, stop, err := startBenchContainerd(ctx, bin, ctr, filepath.Join(r.dir, "ctrd"))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	cb.ctr = c
	if err := r.warmContainerdPulls(ctx, cb, &res); err != nil {
		return res, err
	}
	return res, r.coldContainerdPulls(ctx, cb, &res)
}

// interleaved runs Rounds rounds of a direct pull and a pull by through (whose order alternates) and
// appends their times to direct and to via.
func (r *Runner) interleaved(ctx context.Context, cb *ctrdBench, label string, direct, via *[]time.Duration, through func(i int) (time.Duration, error)) error {
	for i := range r.Cfg.Rounds {
		first, second := true, false // true: direct
		if i%2 == 1 {
			first, second = false, true
		}
		for _, isDirect := range []bool{first, second} {
			if isDirect {
				d, err := cb.fetch(ctx, cb.direct)
				if err != nil {
					return err
				}
				*direct = append(*direct, d)
				continue
			}
			d, err := through(i)
			if err != nil {
				return err
			}
			*via = append(*via, d)
		}
		r.progress("  containerd %s round %d/%d: direct %s, through Berth %s", label, i+1, r.Cfg.Rounds,
			(*direct)[i].Round(time.Millisecond), (*via)[i].Round(time.Millisecond))
	}
	return nil
}

// warmContainerdPulls fills one Berth's cache with a pull, then times pulls through it vs direct.
func (r *Runner) warmContainerdPulls(ctx context.Context, cb *ctrdBench, res *ContainerdPulls) (err error) {
	b, err := r.startBerth(ctx)
	if err != nil {
		return err
	}
	defer r.stopBerth(b, &err)
	if err := b.ProxyProject(ctx, "hub", cb.upURL, false); err != nil {
		return err
	}
	through := filepath.Join(r.dir, "hosts-berth")
	if err := cb.throughHosts(through, b); err != nil {
		return err
	}
	if _, err := cb.fetch(ctx, through); err != nil { // fills Berth's cache
		return err
	}
	return r.interleaved(ctx, cb, "warm", &res.Direct, &res.Through, func(int) (time.Duration, error) {
		return cb.fetch(ctx, through)
	})
}

// coldContainerdPulls times, per round, a pull through a Berth started for that round (empty data
// directory, not timed) vs direct, and checks that the upstream sent every blob during the pull through
// Berth: a round answered from any cache fails the scenario.
func (r *Runner) coldContainerdPulls(ctx context.Context, cb *ctrdBench, res *ContainerdPulls) error {
	want := int64(pullLayers * pullLayerSize)
	return r.interleaved(ctx, cb, "cold", &res.ColdDirect, &res.Cold, func(i int) (d time.Duration, err error) {
		b, err := r.startBerth(ctx)
		if err != nil {
			return 0, err
		}
		defer r.stopBerth(b, &err)
		if err := b.ProxyProject(ctx, "hub", cb.upURL, false); err != nil {
			return 0, err
		}
		through := filepath.Join(r.dir, "hosts-cold-"+strconv.Itoa(i))
		if err := cb.throughHosts(through, b); err != nil {
			return 0, err
		}
		if err := cb.up.ResetStats(ctx); err != nil {
			return 0, err
		}
		if d, err = cb.fetch(ctx, through); err != nil {
			return 0, err
		}
		st, err := cb.up.Stats(ctx)
		if err != nil {
			return 0, err
		}
		if st.BlobBytes < want {
			return 0, fmt.Errorf("cold containerd pull through Berth: the upstream sent %s of blobs, want at least %s", MiB(float64(st.BlobBytes)), MiB(float64(want)))
		}
		res.ColdUpstream = append(res.ColdUpstream, st.BlobBytes)
		return d, os.RemoveAll(through)
	})
}

// pushLayeredImage pushes an OCI image of pullLayers generated layers of pullLayerSize, tagged tag.
func pushLayeredImage(ctx context.Context, reg *Registry, repo, tag string) error {
	var layers []ocispec.Descriptor
	var diffIDs []string
	for i := range pullLayers {
		c := NewContent(uint64(2000+i), pullLayerSize)
		if err := reg.PushBlob(ctx, repo, c.Digest(), c.Reader(0), c.Size); err != nil {
			return fmt.Errorf("push layer: %w", err)
		}
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: c.Digest(), Size: c.Size})
		diffIDs = append(diffIDs, c.Digest().String())
	}
	cfgBytes, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cfg, err := reg.PushBytes(ctx, repo, cfgBytes)
	if err != nil {
		return err
	}
	cfg.MediaType = ocispec.MediaTypeImageConfig
	body, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers})
	_, err = reg.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, body)
	return err
}

func writeHosts(dir, host, content string) error {
	if err := os.MkdirAll(filepath.Join(dir, host), 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, host, "hosts.toml"), []byte(content), 0o600)
}

// ctrFunc runs ctr against the bench's containerd.
type ctrFunc func(ctx context.Context, args ...string) ([]byte, error)

// startBenchContainerd starts containerd with its own root, state and socket under dir, the CRI plugin
// off and content sharing isolated between namespaces; stop ends it.
func startBenchContainerd(ctx context.Context, bin, ctr, dir string) (run ctrFunc, stop func() error, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "--config", cfgPath) //nolint:gosec // the containerd binary found in PATH
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, nil, err
	}
	_ = logf.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return os.RemoveAll(dir)
	}
	run = func(ctx context.Context, args ...string) ([]byte, error) {
		return exec.CommandContext(ctx, ctr, append([]string{"-a", sock}, args...)...).CombinedOutput() //nolint:gosec // ctr from PATH, arguments built here
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := run(ctx, "version"); err == nil {
			return run, stop, nil
		}
		select {
		case err := <-done:
			return nil, nil, fmt.Errorf("containerd exited during start-up: %w", err)
		case <-ctx.Done():
			return nil, nil, errors.Join(ctx.Err(), stop())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, nil, errors.Join(errors.New("containerd not up after 60s"), stop())
		}
	}
}
