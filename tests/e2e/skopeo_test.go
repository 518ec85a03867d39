package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/tlsconfig/tlstest"
)

// TestSkopeoMirror copies a multi-arch image with skopeo (Debian package; scripts/ensure-services.sh
// installs it) through a registries.conf mirror with a path prefix (the project) over TLS, into a
// dir: folder, and checks the digests. The image's own registry, reg-b.test, does not exist: only the
// mirror can answer.
func TestSkopeoMirror(t *testing.T) {
	t.Parallel()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skip("skopeo is not installed and scripts/ensure-services.sh installs it only as root")
		}
		t.Fatalf("skopeo is not installed: scripts/ensure-services.sh installs it (apt-get install skopeo)")
	}
	ca := tlstest.NewCA(t, "e2e skopeo CA")
	up := distributionUpstream(t)
	img := newRuntimeImage(t, "skopeo", 4096)
	img.push(pusher{t: t, base: up.URL, auth: up.Auth}, "tools/cli", "v3")
	srv := startServer(t, serverConfig{tlsCA: ca})
	srv.createProxyProject(t, "pb", srv.createTypedRegistry(t, "b", "docker-registry", up.URL))

	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	require.NoError(t, os.MkdirAll(certs, 0o755))
	caPEM, err := os.ReadFile(ca.CertFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(certs, "ca.crt"), caPEM, 0o600)) //nolint:gosec // a file of the test's temp dir
	conf := filepath.Join(dir, "registries.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`[[registry]]
prefix = "reg-b.test"
location = "reg-b.test"

[[registry.mirror]]
location = "%s/pb"
`, srv.Host)), 0o600))

	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, skopeo, "--registries-conf", conf, "--insecure-policy", "copy", "--multi-arch", "all",
		"--src-cert-dir", certs, "docker://reg-b.test/tools/cli:v3", "dir:"+out)
	cmd.Env = append(os.Environ(), "HOME="+dir) // no user registries.conf.d or auth files of the caller
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "skopeo copy:\n%s", b)

	index, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	require.Equal(t, img.Index.Digest, digest.FromBytes(index), "the index is copied byte-exact")
	for arch, child := range img.Children {
		m, err := os.ReadFile(filepath.Join(out, child.Digest.Encoded()+".manifest.json"))
		require.NoError(t, err, "%s manifest in %s", arch, out)
		require.Equal(t, child.Digest, digest.FromBytes(m))
		layer, err := os.ReadFile(filepath.Join(out, img.Layers[arch].Digest.Encoded()))
		require.NoError(t, err, "%s layer", arch)
		require.Equal(t, img.Layers[arch].Digest, digest.FromBytes(layer))
	}
}
