package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// berthStartTimeout bounds a start (the first start creates the SQLite schema).
const berthStartTimeout = 60 * time.Second

// Berth is one running bin/berth with a fresh data directory.
type Berth struct {
	Registry // admin credentials
	Host     string
	DataDir  string
	LogPath  string
	proc     *Proc
	scheme   string // "http://" or "https://"
}

// StartBerth starts bin on 127.0.0.1:0 with a new data directory under dir and the given extra serve
// arguments, reads the address it bound from its own log line (so no other process can be the one
// answering), and waits for its health endpoint there.
func StartBerth(ctx context.Context, bin, dir, cpus string, extra ...string) (*Berth, error) {
	return startBerthTLS(ctx, bin, dir, cpus, nil, extra...)
}

// startBerthTLS is StartBerth for a Berth serving HTTPS (extra carries its --tls-* flags) when tlsCfg
// is set: the URL is https and every setup client trusts what tlsCfg trusts.
func startBerthTLS(ctx context.Context, bin, dir, cpus string, tlsCfg *tls.Config, extra ...string) (*Berth, error) {
	dataDir, err := os.MkdirTemp(dir, "berth-data-")
	if err != nil {
		return nil, err
	}
	pass := make([]byte, 8)
	_, _ = rand.Read(pass)
	b := &Berth{DataDir: dataDir, LogPath: dataDir + ".log", scheme: "http://"}
	b.User, b.Pass, b.Client = "admin", "Bench-"+hex.EncodeToString(pass), newClient()
	if tlsCfg != nil {
		b.scheme = "https://"
		b.Client.Transport.(*http.Transport).TLSClientConfig = tlsCfg
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-password", b.Pass}, extra...)
	b.proc, _, err = startProc("berth", b.LogPath, childEnv(), false, cpus, bin, args...)
	if err != nil {
		return nil, err
	}
	if err = b.waitHealthy(ctx); err != nil {
		_ = b.proc.Stop()
		return nil, fmt.Errorf("%w (log %s)", err, b.LogPath)
	}
	return b, nil
}

// listeningLine matches Berth's log line with the address it bound (text or JSON log).
var listeningLine = regexp.MustCompile(`msg"?[=:]"?berth listening"?.*?\baddr"?[=:]"?(127\.0\.0\.1:[0-9]+)`)

// waitHealthy waits for the listening line in the log, then for 200 from the health endpoint there.
func (b *Berth) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(berthStartTimeout)
	c := &http.Client{Timeout: 2 * time.Second, Transport: b.Client.Transport}
	for {
		if b.Host == "" {
			if log, err := os.ReadFile(b.LogPath); err == nil {
				if m := listeningLine.FindSubmatch(log); m != nil {
					b.Host = string(m[1])
					b.URL = b.scheme + b.Host
				}
			}
		}
		if b.Host != "" {
			resp, err := c.Get(b.URL + "/api/v2.0/health")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		if b.proc.Exited() {
			return fmt.Errorf("berth exited during start: %w", exitErr(b.proc.err))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth not healthy after %s", berthStartTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Pid is the server's process id.
func (b *Berth) Pid() int { return b.proc.Pid() }

// Stop stops the server (SIGTERM; a clean exit is expected) and removes its data directory and log
// (the log is kept when keepLog, for a failed run).
func (b *Berth) Stop(keepLog bool) error {
	if b == nil {
		return nil
	}
	err := b.proc.Stop()
	b.Client.CloseIdleConnections()
	if rerr := os.RemoveAll(b.DataDir); err == nil {
		err = rerr
	}
	if !keepLog {
		_ = os.Remove(b.LogPath)
	}
	return err
}

// CreateProject creates a public project; with registryID > 0 a proxy-cache project of that registry,
// with the Proxy Referrer API toggle set to proxyReferrers.
func (b *Berth) CreateProject(ctx context.Context, name string, registryID int64, proxyReferrers bool) error {
	var md map[string]string
	if registryID > 0 {
		md = map[string]string{"proxy_referrer_api": strconv.FormatBool(proxyReferrers)}
	}
	return b.createProject(ctx, name, registryID, md)
}

// createProject creates a public project (a proxy-cache project of registryID when > 0) with extra
// metadata md.
func (b *Berth) createProject(ctx context.Context, name string, registryID int64, md map[string]string) error {
	meta := map[string]string{"public": "true"}
	for k, v := range md {
		meta[k] = v
	}
	body := map[string]any{"project_name": name, "metadata": meta}
	if registryID > 0 {
		body["registry_id"] = registryID
	}
	j, _ := json.Marshal(body)
	_, _, err := b.call(ctx, http.MethodPost, b.URL+"/api/v2.0/projects", http.Header{"Content-Type": {"application/json"}}, j, http.StatusCreated)
	return err
}

// CreateRegistry registers an anonymous docker-registry upstream and returns its id.
func (b *Berth) CreateRegistry(ctx context.Context, name, upstreamURL string) (int64, error) {
	j, _ := json.Marshal(map[string]any{"name": name, "type": "docker-registry", "url": upstreamURL})
	hdr := http.Header{"Content-Type": {"application/json"}}
	if _, _, err := b.call(ctx, http.MethodPost, b.URL+"/api/v2.0/registries", hdr, j, http.StatusCreated); err != nil {
		return 0, err
	}
	_, list, err := b.call(ctx, http.MethodGet, b.URL+"/api/v2.0/registries", nil, nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var regs []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(list, &regs); err != nil {
		return 0, fmt.Errorf("registries list: %w", err)
	}
	for _, r := range regs {
		if r.Name == name {
			return r.ID, nil
		}
	}
	return 0, fmt.Errorf("registry %q not in the list", name)
}

// ProxyProject starts nothing: it registers upstreamURL and creates proxy-cache project name over it.
func (b *Berth) ProxyProject(ctx context.Context, name, upstreamURL string, proxyReferrers bool) error {
	id, err := b.CreateRegistry(ctx, name+"-up", upstreamURL)
	if err != nil {
		return err
	}
	return b.CreateProject(ctx, name, id, proxyReferrers)
}

// ProxyProjectMeta is ProxyProject with the project's metadata md (e.g. proxy_referrer_api,
// proxy_referrer_cache_seconds).
func (b *Berth) ProxyProjectMeta(ctx context.Context, name, upstreamURL string, md map[string]string) error {
	id, err := b.CreateRegistry(ctx, name+"-up", upstreamURL)
	if err != nil {
		return err
	}
	return b.createProject(ctx, name, id, md)
}

// startChild re-executes self in a child mode and returns it with its base URL.
func startChild(ctx context.Context, self, dir, cpus, mode string, args ...string) (*Proc, string, error) {
	logPath := filepath.Join(dir, mode+".log")
	p, out, err := startProc(mode, logPath, childEnv(), true, cpus, self, append([]string{"child", mode}, args...)...)
	if err != nil {
		return nil, "", err
	}
	addr, err := waitListen(ctx, p, out, 60*time.Second)
	if err != nil {
		_ = p.Stop()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}
