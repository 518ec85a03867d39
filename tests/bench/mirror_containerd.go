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

// ContainerdPulls is issue 10's containerd figure: `ctr content fetch` of one image (Layers x LayerSize)
// through Berth's warm cache (hosts.toml, per-project form) vs directly from the upstream.
type ContainerdPulls struct {
	Layers    int
	LayerSize int64
	Direct    []time.Duration
	Through   []time.Duration
	Skipped   string // why the figure was not measured ("" = measured)
}

// Ratio is the median of the per-round ratios direct time / time through Berth (above 1, Berth is
// faster), with their range: each round pulls both ways back to back.
func (c ContainerdPulls) Ratio() Ratios {
	return pairedRatios(seconds(c.Direct), seconds(c.Through))
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

// runContainerdPulls pushes a 10 x 8 MiB image into a go-containerregistry upstream, warms a Berth
// proxy-cache project with one pull, then times interleaved pulls by containerd (each into a namespace
// of its own, with content sharing isolated, so that every pull downloads every byte) through Berth and
// directly. It needs root and the Debian containerd package; otherwise it records why it was skipped.
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
	upReg := &Registry{URL: upURL, Client: newClient()}
	defer upReg.Client.CloseIdleConnections()
	const repo = "lib/app"
	if err := pushLayeredImage(ctx, upReg, repo, "v1"); err != nil {
		return res, err
	}
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	if err := b.ProxyProject(ctx, "hub", upURL, false); err != nil {
		return res, err
	}
	u, err := url.Parse(upURL)
	if err != nil {
		return res, err
	}
	direct, through := filepath.Join(r.dir, "hosts-direct"), filepath.Join(r.dir, "hosts-berth")
	if err := writeHosts(direct, u.Host, fmt.Sprintf("server = %q\n", upURL)); err != nil {
		return res, err
	}
	if err := writeHosts(through, u.Host, fmt.Sprintf("server = \"http://127.0.0.1:1\"\n[host.\"%s/v2/hub\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n", b.URL)); err != nil {
		return res, err
	}
	c, stop, err := startBenchContainerd(ctx, bin, ctr, filepath.Join(r.dir, "ctrd"))
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	ref := u.Host + "/" + repo + ":v1"
	n := 0
	fetch := func(hosts string) (time.Duration, error) {
		n++
		t0 := time.Now()
		if out, err := c(ctx, "-n", "pull"+strconv.Itoa(n), "content", "fetch", "--plain-http", "--hosts-dir", hosts, ref); err != nil {
			return 0, fmt.Errorf("ctr content fetch %s: %w: %s", ref, err, out)
		}
		return time.Since(t0), nil
	}
	if _, err := fetch(through); err != nil { // fills Berth's cache
		return res, err
	}
	for i := range r.Cfg.Rounds {
		order := []string{direct, through}
		if i%2 == 1 {
			order = []string{through, direct}
		}
		for _, hosts := range order {
			d, err := fetch(hosts)
			if err != nil {
				return res, err
			}
			if hosts == direct {
				res.Direct = append(res.Direct, d)
			} else {
				res.Through = append(res.Through, d)
			}
		}
		r.progress("  containerd round %d/%d: direct %s, through Berth %s", i+1, r.Cfg.Rounds,
			res.Direct[i].Round(time.Millisecond), res.Through[i].Round(time.Millisecond))
	}
	return res, nil
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
