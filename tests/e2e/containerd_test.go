package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/tlsconfig/tlstest"
)

// closedServer is the fallback server written into every hosts.toml: nothing listens on port 1, so a
// pull succeeds only through the mirror host (Berth).
const closedServer = "http://127.0.0.1:1"

// containerd is a containerd daemon of the test's own: its own root, state, socket and config, with the
// CRI plugin off. ctr is its client.
type containerd struct {
	t    *testing.T
	sock string
	ctr  string
}

// startContainerd starts a containerd (Debian package; scripts/ensure-services.sh installs it). It
// needs root: the test is skipped otherwise.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	bin, ctr := containerdBinaries(t)
	// A short directory: the socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd")
	require.NoError(t, err)
	c := &containerd{t: t, sock: filepath.Join(dir, "c.sock"), ctr: ctr}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	logPath := filepath.Join(dir, "containerd.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	_ = logf.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("containerd log:\n%s", clip(string(b)))
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(startupTimeout)
	for {
		if _, err := c.run("version"); err == nil {
			return c
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("containerd exited during start-up:\n%s", clip(string(b)))
		case <-time.After(100 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "containerd not up after %s", startupTimeout)
	}
}

// containerdBinaries returns the paths of containerd and ctr. Without root the test is skipped; as root
// they must be installed.
func containerdBinaries(t *testing.T) (containerdPath, ctrPath string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containerd runs as root only; run the e2e suite as root")
	}
	bin, err := exec.LookPath("containerd")
	require.NoError(t, err, "containerd is not installed: scripts/ensure-services.sh installs it (apt-get install containerd)")
	ctr, err := exec.LookPath("ctr")
	require.NoError(t, err, "ctr is not installed: scripts/ensure-services.sh installs it (apt-get install containerd)")
	return bin, ctr
}

// run runs ctr against this daemon in namespace "e2e".
func (c *containerd) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.ctr, append([]string{"-a", c.sock, "-n", "e2e"}, args...)...).CombinedOutput()
	return string(out), err
}

// pull pulls ref for linux/amd64 through hostsDir, unpacks it (native snapshotter: no overlay mounts
// needed), and requires `ctr images check` to report it complete, unpacked, with target digest want.
func (c *containerd) pull(hostsDir, ref, want string) {
	c.t.Helper()
	out, err := c.run("images", "pull", "--hosts-dir", hostsDir, "--platform", "linux/amd64", "--snapshotter", "native", ref)
	require.NoError(c.t, err, "ctr images pull %s:\n%s", ref, out)
	out, err = c.run("images", "check", "--snapshotter", "native")
	require.NoError(c.t, err, "ctr images check:\n%s", out)
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == ref {
			require.Contains(c.t, line, want, "ctr images check:\n%s", out)
			require.Contains(c.t, line, "complete", "ctr images check:\n%s", out)
			require.True(c.t, strings.HasSuffix(strings.TrimSpace(line), "true"), "not unpacked (last column):\n%s", out)
			c.t.Logf("ctr images check: %s", line)
			return
		}
	}
	c.t.Fatalf("ctr images check does not list %s:\n%s", ref, out)
}

// writeHostsToml writes <dir>/<host>/hosts.toml (host "_default": every registry without its own).
func writeHostsToml(t *testing.T, dir, host, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, host), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, host, "hosts.toml"), []byte(content), 0o600))
}

// TestContainerdMirror pulls through Berth, over TLS with the test CA in hosts.toml, with a real
// containerd and ctr: (a) the per-project form with override_path; (b) one mirror host for a CNCF
// distribution (the pinned registry binary) and a go-containerregistry upstream, told apart by the ns
// containerd sends (their 127.0.0.1:<port> hosts); (d) the
// multi-arch image by tag with --platform again after its upstream stopped; each pull unpacked and
// reported complete by `ctr images check` (e). The fallback server is a closed port, so nothing reaches
// an upstream but through Berth.
func TestContainerdMirror(t *testing.T) {
	t.Parallel()
	containerdBinaries(t)
	ca := tlstest.NewCA(t, "e2e containerd CA")
	upA := ggcrUpstream(t)
	hostB := startDistribution(t) // the CNCF distribution registry binary (make tools)
	urlB := "http://" + hostB
	imgA := newRuntimeImage(t, "containerd a", 4096)
	imgA.push(pusher{t: t, base: upA.URL, auth: upA.Auth}, "team/app", "v1")
	imgB := newRuntimeImage(t, "containerd b", 4096)
	imgB.push(pusher{t: t, base: urlB}, "tools/cli", "v2")

	srv := startServer(t, serverConfig{tlsCA: ca})
	srv.createProxyProject(t, "pa", srv.createTypedRegistry(t, "a", "docker-registry", upA.URL))
	srv.createProxyProject(t, "pb", srv.createTypedRegistry(t, "b", "docker-registry", urlB))
	refA, refB := upA.Host+"/team/app:v1", hostB+"/tools/cli:v2"

	t.Run("per-project form", func(t *testing.T) {
		hosts := t.TempDir()
		writeHostsToml(t, hosts, hostB, fmt.Sprintf(`server = %q
[host."https://%s/v2/pb"]
  capabilities = ["pull", "resolve"]
  ca = %q
  override_path = true
`, closedServer, srv.Host, ca.CertFile))
		startContainerd(t).pull(hosts, refB, imgB.Index.Digest.String())
	})

	hosts := t.TempDir()
	writeHostsToml(t, hosts, "_default", fmt.Sprintf(`server = %q
[host."https://%s"]
  capabilities = ["pull", "resolve"]
  ca = %q
`, closedServer, srv.Host, ca.CertFile))
	t.Run("one mirror host for two upstreams", func(t *testing.T) {
		c := startContainerd(t)
		c.pull(hosts, refA, imgA.Index.Digest.String())
		c.pull(hosts, refB, imgB.Index.Digest.String())
	})

	t.Run("multi-arch by tag with the upstream stopped", func(t *testing.T) {
		upA.stop(t)
		startContainerd(t).pull(hosts, refA, imgA.Index.Digest.String())
	})
}
