package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/storage/s3test"
)

// cluster is three bin/berth nodes sharing one PostgreSQL database, one Redis key prefix, one S3 bucket
// (a versitygw with its posix backend, started by the test on loopback) and the secret and token
// signing keys, each with a data directory of its own, behind an HAProxy on loopback that balances
// round-robin and checks /api/v2.0/health, as docs/deploy.md lays it out.
type cluster struct {
	nodes  []*server
	front  *server // the HAProxy address, as clients see it (not a process of ours: stop does nothing)
	lbLog  string  // HAProxy's log: its health-check verdicts
	s3     *s3test.Server
	bucket string // the nodes' bucket; their keys are under "berth/"
}

// drainDelay is the nodes' shutdown-drain-delay: several of HAProxy's 200 ms health checks.
const drainDelay = "1s"

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		missing(t, "haproxy not installed (Debian package haproxy; scripts/ensure-services.sh installs it)")
	}
	pgURL := freshPostgresDatabase(t)
	redisURL := envOr("BERTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	requireReachable(t, "Redis (BERTH_TEST_REDIS_URL)", redisURL)
	prefix := "berth-e2e-" + randomHex(t, 6) + ":"
	t.Cleanup(func() { deleteRedisPrefix(t, redisURL, prefix) })
	s3 := s3test.Start(t)
	bucket := s3.Bucket(t)
	keys := t.TempDir() // the files every node shares, as deploy.md's secret_key_file
	password := "Berth-e2e-" + randomHex(t, 8)

	c := &cluster{s3: s3, bucket: bucket}
	for range n {
		// A fixed port per node, so that a restarted node is where HAProxy expects it; a data directory
		// per node (it holds the node's spooled S3 writes).
		c.nodes = append(c.nodes, startServer(t, serverConfig{adminPassword: password, listen: freeAddr(t), args: []string{
			"--database-url", pgURL, "--redis-url", redisURL, "--redis-key-prefix", prefix,
			"--storage-url", "s3://" + bucket + "/berth", "--storage-s3-endpoint", s3.Endpoint,
			"--storage-s3-region", s3.Region, "--storage-s3-path-style",
			"--storage-s3-access-key", s3.AccessKey, "--storage-s3-secret-key", s3.SecretKey,
			"--secret-key-file", filepath.Join(keys, "secret.key"),
			"--token-signing-key-file", filepath.Join(keys, "token.key"),
			"--shutdown-drain-delay", drainDelay,
			// The shared test machine can stall a Redis round trip past the 250 ms default: every
			// such stall would count as a cache miss and skip the cross-node refresh lock.
			"--redis-op-timeout", "5s",
		}}))
	}
	front := freeAddr(t)
	cfg := haproxyConfig(front, c.nodes)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	require.NoError(t, err)
	cmd := exec.Command(haproxy, "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	_ = logf.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("haproxy log:\n%s", b)
		}
	})
	c.lbLog = logf.Name()
	c.front = &server{Host: front, URL: "http://" + front, AdminPassword: password, client: http.DefaultClient, stopped: true}
	require.Eventually(t, func() bool {
		resp, err := http.Get(c.front.URL + "/api/v2.0/health")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "haproxy does not answer on %s", front)
	return c
}

// haproxyConfig balances front over the nodes round-robin, checking each node's health every 200 ms and
// taking it out after two 503 answers (draining) or refused connections; a request whose connection
// failed is retried on another node.
func haproxyConfig(front string, nodes []*server) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 2m
  timeout server 2m
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
frontend berth
  bind %s
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /api/v2.0/health
  http-check expect status 200
  timeout check 2s
  default-server inter 200ms fall 2 rise 1
`, front)
	for i, n := range nodes {
		fmt.Fprintf(&b, "  server node%d %s check\n", i+1, n.Host)
	}
	return b.String()
}

// requireInBucket fails unless the blob d is an object of the nodes' bucket: what they serve is on S3.
func (c *cluster) requireInBucket(t *testing.T, d digest.Digest) {
	t.Helper()
	key := "berth/blobs/" + string(d.Algorithm()) + "/" + d.Encoded()[:2] + "/" + d.Encoded()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.s3.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	require.NoError(t, err, "blob %s is not in bucket %s at %s", d, c.bucket, key)
}

// warnings returns the warnings every node logged so far.
func (c *cluster) warnings() string {
	var out []string
	for i, n := range c.nodes {
		b, _ := os.ReadFile(n.logPath)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				out = append(out, fmt.Sprintf("node%d: %s", i+1, line))
			}
		}
	}
	return strings.Join(out, "\n")
}

func deleteRedisPrefix(t *testing.T, url, prefix string) {
	client, err := cache.NewRedisClient(url)
	if err != nil {
		return
	}
	defer func() { _ = client.Close() }()
	ctx := context.Background()
	keys, _ := client.Keys(ctx, prefix+"*").Result()
	if len(keys) > 0 {
		_ = client.Del(ctx, keys...).Err()
	}
	t.Logf("deleted %d redis keys under %s", len(keys), prefix)
}

// gatedCounter counts upstream requests whose path contains part, holding each until open is called.
type gatedCounter struct {
	part  string
	calls atomic.Int64
	gate  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	seen  []string // each counted request: time, URL and User-Agent, for failure messages
}

func newGatedCounter(part string) *gatedCounter {
	return &gatedCounter{part: part, gate: make(chan struct{})}
}

func (g *gatedCounter) requests() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.seen, "\n")
}

func (g *gatedCounter) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, g.part) {
			g.calls.Add(1)
			g.mu.Lock()
			g.seen = append(g.seen, time.Now().Format("15:04:05.000")+" "+r.URL.String()+" "+r.UserAgent())
			g.mu.Unlock()
			select {
			case <-g.gate:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// answer is one client's outcome.
type answer struct {
	status int
	body   []byte
	err    error
}

// concurrentGets sends GET urls[i] for every i at once and opens gate once every request is on the wire
// (so all of them overlap the upstream request for certain), then returns the answers.
func concurrentGets(t *testing.T, urls []string, gate *gatedCounter) []answer {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: len(urls)}}
	defer hc.CloseIdleConnections()
	var written, wg sync.WaitGroup
	written.Add(len(urls))
	answers := make([]answer, len(urls))
	for i, u := range urls {
		wg.Go(func() {
			var once sync.Once
			wrote := func() { once.Do(written.Done) }
			defer wrote()
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { wrote() },
			})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				answers[i].err = err
				return
			}
			resp, err := hc.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer func() { _ = resp.Body.Close() }()
			answers[i].status = resp.StatusCode
			answers[i].body, answers[i].err = io.ReadAll(resp.Body)
		})
	}
	allWritten := make(chan struct{})
	go func() { written.Wait(); close(allWritten) }()
	select {
	case <-allWritten:
	case <-time.After(time.Minute): // a bound against a hang, not a synchronisation
		t.Errorf("the %d client requests were not all written within a minute", len(urls))
	}
	gate.open()
	wg.Wait()
	return answers
}
