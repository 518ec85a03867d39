package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
}

// StartBerth starts bin at a free loopback port with a new data directory under dir, the given extra
// serve arguments, and waits for its health endpoint.
func StartBerth(ctx context.Context, bin, dir, cpus string, extra ...string) (*Berth, error) {
	dataDir, err := os.MkdirTemp(dir, "berth-data-")
	if err != nil {
		return nil, err
	}
	pass := make([]byte, 8)
	_, _ = rand.Read(pass)
	b := &Berth{DataDir: dataDir, LogPath: dataDir + ".log"}
	b.User, b.Pass, b.Client = "admin", "Bench-"+hex.EncodeToString(pass), newClient()
	for attempt := 0; ; attempt++ { // a free port can be taken between probe and bind: retry
		b.Host, err = freeAddr()
		if err != nil {
			return nil, err
		}
		b.URL = "http://" + b.Host
		args := append([]string{"serve", "--listen", b.Host, "--data-dir", dataDir, "--admin-password", b.Pass}, extra...)
		b.proc, _, err = startProc("berth", b.LogPath, childEnv(), false, cpus, bin, args...)
		if err != nil {
			return nil, err
		}
		if err = b.waitHealthy(ctx); err == nil {
			return b, nil
		}
		_ = b.proc.Stop()
		if attempt == 2 || ctx.Err() != nil {
			return nil, fmt.Errorf("%w (log %s)", err, b.LogPath)
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

func (b *Berth) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(berthStartTimeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(b.URL + "/api/v2.0/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
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
