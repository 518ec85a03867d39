package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestProxyCacheReferrers pulls through a proxy-cache project whose upstream is another Berth (referrers
// API): manifests come back byte-exact, referrers and a cosign signature are visible through the proxy.
func TestProxyCacheReferrers(t *testing.T) {
	t.Parallel()
	up := startServer(t, serverConfig{})
	up.createProject(t, "up", false)
	uc := newClients(t, up, "oras", "crane", "cosign")
	uc.loginOras()
	uc.loginCrane()
	upRepo := up.Host + "/up/app"
	dig := uc.pushImage(upRepo+":v1", "proxied content\n")
	uc.writeFile("sbom.json", []byte(`{"components":[]}`))
	sbom := uc.orasAttach(upRepo+"@"+dig, typeSBOM, "sbom.json:application/json")
	uc.must("cosign", "generate-key-pair")
	uc.must("cosign", "sign", "--key", "cosign.key", "--allow-http-registry",
		"--use-signing-config=false", "--tlog-upload=false", "-y", upRepo+"@"+dig)
	upManifest := uc.must("crane", "manifest", upRepo+"@"+dig)

	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream-berth", up.URL, up.admin())
	// Freshness 0: every referrers request asks the upstream, so the outage below exercises the stale path.
	proxy.createProxyProject(t, "cache", id, "proxy_referrer_cache_seconds", "0")

	pc := newClients(t, proxy, "oras", "crane", "cosign") // anonymous: the proxy project is public
	ref := proxy.Host + "/cache/up/app"
	require.Equal(t, dig, strings.TrimSpace(pc.must("crane", "digest", ref+":v1")))
	require.Equal(t, upManifest, pc.must("crane", "manifest", ref+"@"+dig), "proxied manifest must be byte-exact")
	pc.must("crane", "export", ref+":v1", "exported.tar")
	require.Equal(t, []byte("proxied content\n"), untar(t, pc.readFile("exported.tar"))["app/content.txt"])

	refs := pc.discover(ref+"@"+dig, "")
	require.Equal(t, sortedStrings(typeCosignBundle, typeSBOM), artifactTypes(refs), "referrers through the proxy: %+v", refs)
	only := pc.discover(ref+"@"+dig, typeSBOM)
	require.Len(t, only, 1, "filtered referrers through the proxy: %+v", only)
	require.Equal(t, sbom.Digest, only[0].Digest)
	checkReferrersAPI(t, proxy, "cache/up/app", dig, "", 2)

	// The public key is all the verifier needs; the signature comes through the proxy's referrers API.
	pc.writeFile("cosign.pub", uc.readFile("cosign.pub"))
	pc.must("cosign", "verify", "--key", "cosign.pub", "--allow-http-registry", "--insecure-ignore-tlog=true", ref+"@"+dig)

	// Pushing an image into a proxy-cache project is refused (DENIED), even for the admin; a referrer
	// (a manifest with a subject) is accepted and merged with the upstream's.
	admin := newClients(t, proxy, "oras")
	admin.loginOras()
	admin.writeFile("x.txt", []byte("no pushes here\n"))
	r := admin.mustFail("oras", "push", "--plain-http", ref+":pushed", "x.txt:text/plain")
	require.Contains(t, strings.ToUpper(r.Stderr), "DENIED", "push into a proxy-cache project:\n%s", r)
	note := admin.orasAttach(ref+"@"+dig, typeSig, "x.txt:text/plain")
	refs = pc.discover(ref+"@"+dig, "")
	require.Equal(t, sortedStrings(typeCosignBundle, typeSBOM, typeSig), artifactTypes(refs), "upstream and local referrers merged: %+v", refs)
	require.Contains(t, digests(refs), note.Digest)

	// Upstream outage: what was pulled through (subject, referrers list, signature) still verifies.
	up.stop(t)
	refs = pc.discover(ref+"@"+dig, "")
	require.Equal(t, sortedStrings(typeCosignBundle, typeSBOM, typeSig), artifactTypes(refs), "referrers with the upstream down: %+v", refs)
	pc.must("cosign", "verify", "--key", "cosign.pub", "--allow-http-registry", "--insecure-ignore-tlog=true", ref+"@"+dig)
	require.Equal(t, upManifest, pc.must("crane", "manifest", ref+"@"+dig), "subject with the upstream down")
	res := checkReferrersAPI(t, proxy, "cache/up/app", dig, "", 3)
	require.Equal(t, "STALE", res.Header.Get("X-Cache"), "the upstream is down and freshness is 0: the cached answer is stale\n%s", res)
}

// TestProxyCacheTagSchemaUpstream: the upstream (CNCF distribution) has no referrers API, so referrers
// pushed there live in the sha256-<hex> tag index; through the proxy they are served by the referrers API.
func TestProxyCacheTagSchemaUpstream(t *testing.T) {
	t.Parallel()
	upHost := startDistribution(t)
	uc := newClients(t, nil, "oras", "crane")
	upRepo := upHost + "/lib/app"
	dig := uc.pushImage(upRepo+":v1", "from distribution\n")
	uc.writeFile("sbom.json", []byte(`{"components":[]}`))
	sbom := uc.orasAttach(upRepo+"@"+dig, typeSBOM, "sbom.json:application/json")
	require.Contains(t, uc.tags(upRepo), fallbackTag(dig), "oras should have used the tag schema upstream")

	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream-distribution", "http://"+upHost, nil)
	proxy.createProxyProject(t, "mirror", id)
	pc := newClients(t, proxy, "oras", "crane")
	ref := proxy.Host + "/mirror/lib/app"
	require.Equal(t, dig, strings.TrimSpace(pc.must("crane", "digest", ref+":v1")))
	checkReferrersAPI(t, proxy, "mirror/lib/app", dig, "", 1)
	refs := pc.discover(ref+"@"+dig, "")
	require.Len(t, refs, 1, "referrers through the proxy: %+v", refs)
	require.Equal(t, sbom.Digest, refs[0].Digest)
	require.Equal(t, typeSBOM, refs[0].ArtifactType)
}

// startDistribution runs the CNCF distribution registry (BERTH_TOOLS_BIN/registry) on 127.0.0.1:0 with
// in-test storage and returns the host:port it logged as bound. It has no referrers API.
func startDistribution(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(toolsDir(t, "registry"), "registry")
	dir := t.TempDir()
	host := "127.0.0.1:0"
	cfg := fmt.Sprintf(`version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: %s
validation:
  manifests:
    urls:
      allow: ['^https?://']
`, filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
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
			t.Logf("distribution registry log:\n%s", clip(string(b)))
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startupTimeout)
	host = ""
	for {
		if host == "" {
			host = boundAddr(logPath, 0, distributionListening)
		}
		if host != "" {
			resp, err := client.Get("http://" + host + "/v2/")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return host
				}
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("distribution registry exited during start-up:\n%s", clip(string(b)))
		case <-time.After(100 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "distribution registry not up at %s after %s", host, startupTimeout)
	}
}
