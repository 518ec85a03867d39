package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/tlsconfig/tlstest"
)

const (
	adminUser      = "admin"
	startupTimeout = 60 * time.Second // first start creates the database schema
	stopTimeout    = 30 * time.Second // SIGTERM, then SIGKILL
	httpTimeout    = 30 * time.Second
)

// missing reports an unmet prerequisite: a failure under CI=true (CI must run the suite), a skip otherwise.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("e2e prerequisite missing under CI=true: %s", msg)
	}
	t.Skipf("e2e prerequisite missing (set CI=true to make this a failure): %s", msg)
}

// berthBin returns the absolute path of the server binary, or reports it missing.
func berthBin(t *testing.T) string {
	t.Helper()
	p := envOr("BERTH_BIN", filepath.Join("..", "..", "bin", "berth"))
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		missing(t, "server binary %s not found or not executable (BERTH_BIN; build it with `make build`)", abs)
	}
	return abs
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serverConfig is how a test wants its server started.
type serverConfig struct {
	dataDir string      // "" = a fresh t.TempDir()
	args    []string    // extra `berth serve` arguments
	env     []string    // extra environment of the server (KEY=value)
	tlsCA   *tlstest.CA // when set, the server serves HTTPS with a certificate of this CA for 127.0.0.1
	// adminPassword is the admin password ("" = a random one); nodes sharing a database share it.
	adminPassword string
	// listen is a fixed address to listen on ("" = 127.0.0.1:0), for a node a load balancer expects
	// at the same address after a restart.
	listen string
}

// server is one running bin/berth process.
type server struct {
	Host          string // 127.0.0.1:port, the registry host clients use
	URL           string // http://Host, or https://Host with serverConfig.tlsCA
	AdminPassword string
	DataDir       string

	bin      string
	cfg      serverConfig
	logPath  string
	client   *http.Client // trusts serverConfig.tlsCA when set
	cmd      *exec.Cmd
	logStart int64         // offset of the running launch's lines in the log
	exited   chan struct{} // closed when the process has exited; waitErr is then set
	waitErr  error
	stopped  bool
	mu       sync.Mutex
}

// startServer starts bin/berth on a free loopback port and waits until its health endpoint answers 200.
// The server is stopped (SIGTERM) when the test ends; its log is printed if the test failed.
func startServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	bin := berthBin(t)
	if cfg.dataDir == "" {
		cfg.dataDir = t.TempDir()
	}
	if cfg.adminPassword == "" {
		cfg.adminPassword = "Berth-e2e-" + randomHex(t, 8)
	}
	s := &server{
		bin:           bin,
		cfg:           cfg,
		DataDir:       cfg.dataDir,
		AdminPassword: cfg.adminPassword,
		logPath:       filepath.Join(t.TempDir(), "berth.log"),
		client:        http.DefaultClient,
	}
	if cfg.tlsCA != nil {
		pair := cfg.tlsCA.Server(t, t.TempDir(), "berth", "127.0.0.1")
		s.cfg.args = append(s.cfg.args, "--tls-cert-file", pair.CertFile, "--tls-key-file", pair.KeyFile)
		pool := x509.NewCertPool()
		pool.AddCert(cfg.tlsCA.Cert)
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}}
	}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server log (%s), last lines:\n%s", s.logPath, s.logTail(200))
		}
	})
	s.start(t)
	return s
}

// start launches the process and waits for health; it fails the test when the process exits first or
// does not become healthy in startupTimeout.
func (s *server) start(t *testing.T) {
	t.Helper()
	if err := s.launch(t); err != nil {
		t.Fatalf("%v (the server log follows)", err)
	}
}

// launch starts one process listening on 127.0.0.1:0 and waits for health at the address the process
// itself logged as bound (so no other process can be the one answering); it returns an error when the
// process exits first or does not become healthy in startupTimeout.
func (s *server) launch(t *testing.T) error {
	t.Helper()
	s.Host, s.URL = "", ""
	listen := s.cfg.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	args := append([]string{
		"serve",
		"--listen", listen,
		"--data-dir", s.DataDir,
		"--admin-password", s.AdminPassword,
	}, s.cfg.args...)

	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	_, _ = fmt.Fprintf(logf, "\n==== %s %s\n", s.bin, strings.Join(redactArgs(args), " "))
	fi, err := logf.Stat()
	require.NoError(t, err)
	s.logStart = fi.Size() // this launch's lines start here

	// Not exec.CommandContext: the server lives for the whole test and is stopped with SIGTERM (then
	// SIGKILL after stopTimeout) by stop, so that a clean shutdown can be checked.
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(serverEnv(), s.cfg.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	require.NoError(t, cmd.Start(), "start %s", s.bin)
	_ = logf.Close() // the child holds its own descriptor

	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.stopped, s.waitErr = cmd, exited, false, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	err = s.waitHealthy(t)
	if err != nil {
		s.mu.Lock()
		s.stopped = true // nothing left to stop, or killed below
		s.mu.Unlock()
		_ = cmd.Process.Kill()
		<-exited
	}
	return err
}

// waitHealthy waits for the process to log the address it bound, then polls GET /api/v2.0/health there
// until 200, the process exits, or startupTimeout passes.
func (s *server) waitHealthy(t *testing.T) error {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: s.client.Transport}
	deadline := time.Now().Add(startupTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		if s.Host == "" {
			if addr := boundAddr(s.logPath, s.logStart, berthListening); addr != "" {
				s.Host, s.URL = addr, "http://"+addr
				if s.cfg.tlsCA != nil {
					s.URL = "https://" + addr
				}
			}
		}
		var resp *http.Response
		err := errNotListening
		if s.Host != "" {
			resp, err = client.Get(s.URL + "/api/v2.0/health")
		}
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d, body %q", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-s.exited:
			s.mu.Lock()
			werr := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("berth exited before becoming healthy: %w", werr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth not healthy at %s/api/v2.0/health after %s (last: %s)", s.URL, startupTimeout, last)
		}
	}
}

// stop sends SIGTERM and waits; a server that does not exit in stopTimeout is killed. A server that
// exits non-zero after SIGTERM fails the test: shutdown must be clean.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	cmd, exited, stopped := s.cmd, s.exited, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if cmd == nil || stopped {
		return
	}
	select {
	case <-exited:
		s.mu.Lock()
		werr := s.waitErr
		s.mu.Unlock()
		if !t.Failed() {
			t.Errorf("berth had already exited before the test stopped it: %v", werr)
		}
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("berth did not exit within %s of SIGTERM; killed", stopTimeout)
		return
	}
	s.mu.Lock()
	werr := s.waitErr
	s.mu.Unlock()
	if werr != nil {
		t.Errorf("berth exited uncleanly after SIGTERM: %v", werr)
	}
}

// restart stops the server and starts it again on the same data directory (and database).
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.stop(t)
	s.start(t)
}

func (s *server) logTail(lines int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("... (%d earlier lines in %s)", len(all)-lines, s.logPath)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// serverEnv is the environment minus any BERTH_* setting of the caller's (the flags decide), with debug logs.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	return append(env, "BERTH_LOG_LEVEL=debug")
}

func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if i > 0 && out[i-1] == "--admin-password" {
			out[i] = "***"
		}
	}
	return out
}

// freeAddr returns 127.0.0.1:<port> of a port that was free a moment ago. Only for servers that cannot
// listen on port 0 and report it (redis-server): another process may take the port meanwhile, so such a
// server must be checked to be the one answering.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

var errNotListening = errors.New("no listening line in the log yet")

// Lines with which servers log the address they bound: Berth (text or JSON log) and distribution.
var (
	berthListening        = regexp.MustCompile(`msg"?[=:]"?berth listening"?.*?\baddr"?[=:]"?(127\.0\.0\.1:[0-9]+)`)
	distributionListening = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)
)

// boundAddr returns the address re's first group matches in the log at path from offset on ("" when
// none yet).
func boundAddr(path string, offset int64, re *regexp.Regexp) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	if m := re.FindSubmatch(b[offset:]); m != nil {
		return string(m[1])
	}
	return ""
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// httpResult is one REST or registry API exchange, printable in failure messages.
type httpResult struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

func (r httpResult) String() string {
	var hb strings.Builder
	_ = r.Header.Write(&hb)
	body := string(r.Body)
	if len(body) > 4096 {
		body = body[:4096] + "...(truncated)"
	}
	return fmt.Sprintf("%s %s -> %d\n%s\n%s", r.Method, r.URL, r.Status, strings.TrimSpace(hb.String()), body)
}

// basicAuth is a user and password sent with Basic authentication.
type basicAuth struct{ user, password string }

// admin returns the admin credentials of the server.
func (s *server) admin() *basicAuth { return &basicAuth{adminUser, s.AdminPassword} }

// do sends one request, with Basic credentials when auth is not nil.
func (s *server) do(t *testing.T, method, path string, auth *basicAuth, header http.Header, body []byte) httpResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if auth != nil {
		req.SetBasicAuth(auth.user, auth.password)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "%s %s: read body", method, path)
	return httpResult{Method: method, URL: s.URL + path, Status: resp.StatusCode, Header: resp.Header, Body: b}
}
