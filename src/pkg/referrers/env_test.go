package referrers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestMain(m *testing.M) { registrytest.Main(m) }

// Artifact types used by the tests.
const (
	atNotation = "application/vnd.cncf.notary.signature"                // carried as config.mediaType and artifactType
	atBundle   = "application/vnd.dev.sigstore.bundle.v0.3+json"        // artifactType with the empty config (cosign v3)
	atSBOM     = "application/vnd.example.sbom.v1+json"                 // scripted upstream entries
	repoPath   = "app"                                                  // repository below the project and upstream
	freshness  = 30 * time.Second                                       // the controllers' default freshness
	emptyJSON  = ocispec.MediaTypeEmptyJSON                             // the empty config media type
	indexType  = ocispec.MediaTypeImageIndex                            // the referrers response type
	manifestMT = ocispec.MediaTypeImageManifest                         // every test referrer is an image manifest
	badJSON    = "<html>this is not the referrers API</html>"           // garbage an upstream may send
	oversize   = upstream.MaxMetadataSize + 1024                        // a referrers body over the limit
	errBody    = `{"errors":[{"code":"UNKNOWN","message":"injected"}]}` // an OCI error body
)

// ---- clock ----

// clock is the controllers' (and the memory cache's) time, moved by the tests instead of sleeping.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Now()) }

// ---- caches ----

// cacheKind builds one Cache implementation for a test.
type cacheKind struct {
	name string
	new  func(t *testing.T, clk *clock) cache.Cache
}

var cacheKinds = []cacheKind{
	{"memory", func(_ *testing.T, clk *clock) cache.Cache { return cache.NewMemory(64<<20, cache.WithClock(clk.Now)) }},
	{"redis", func(t *testing.T, _ *clock) cache.Cache { return newRedisCache(t, redisPrefix(t)) }},
	{"tiered", newTieredCache}, // the embedded default: memory in front of a file (disk_test.go in package cache)
}

// eachCache runs test as a subtest once per cache kind of cacheKinds.
func eachCache(t *testing.T, test func(t *testing.T, ck cacheKind)) {
	t.Helper()
	for _, ck := range cacheKinds {
		t.Run(ck.name, func(t *testing.T) { test(t, ck) })
	}
}

// newTieredCache is the embedded default's cache: memory in front of a Disk file in a temp dir.
func newTieredCache(t *testing.T, clk *clock) cache.Cache {
	d, err := cache.OpenDisk(t.Context(), filepath.Join(t.TempDir(), "referrers-cache.db"), 64<<20, cache.WithDiskClock(clk.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return cache.NewTiered(cache.NewMemory(64<<20, cache.WithClock(clk.Now)), d)
}

func redisURL() string {
	if u := os.Getenv("BERTH_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// redisPrefix returns a key prefix unique to this test; its keys are deleted when the test ends.
func redisPrefix(t *testing.T) string {
	t.Helper()
	prefix := "berth-test:referrers:" + rand.Text() + ":"
	t.Cleanup(func() {
		client, err := cache.NewRedisClient(redisURL())
		if err != nil {
			return
		}
		defer func() { _ = client.Close() }()
		ctx := context.Background()
		var keys []string
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = client.Del(ctx, keys...).Err()
		}
	})
	return prefix
}

// newRedisCache returns a Redis cache under prefix with its own client, as one Berth node has.
// redisLeases returns refresh leases on the test Redis under prefix: what nodes sharing that Redis share.
func redisLeases(t *testing.T, prefix string) lease.Locker {
	t.Helper()
	client, err := cache.NewRedisClient(redisURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	return lease.NewRedis(client, prefix)
}

// withLeases makes a controller take its refresh leases from l.
func withLeases(l lease.Locker) func(*referrers.Options) {
	return func(o *referrers.Options) { o.Leases = l }
}

func newRedisCache(t *testing.T, prefix string) cache.Cache {
	t.Helper()
	client, err := cache.NewRedisClient(redisURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Ping(t.Context()).Err(), "the tests need Redis at %s (BERTH_TEST_REDIS_URL)", redisURL())
	return cache.NewRedis(client, prefix, cache.WithOpTimeout(2*time.Second))
}

// ---- the environment ----

// env is the real stack of one Berth node: meta on a SQLite file, storage.FS, the local service, the
// upstream clients of upstream.Clients and the referrers controller over a cache, with one proxy-cache
// project "cache" (toggle on) whose registry row points at the upstream.
type env struct {
	t       *testing.T
	up      *upServer
	clock   *clock
	store   meta.Store
	fs      *storage.FS
	local   *local.Service
	clients *upstream.Clients
	box     *secret.Box
	reg     *meta.Registry
	project *meta.Project
	cache   cache.Cache
	metrics *metrics.Metrics
	ctl     *referrers.Controller
}

// listers adapts upstream.Clients to referrers.Listers, as cmd/berth does.
type listers struct{ c *upstream.Clients }

func (l listers) Lister(ctx context.Context, registryID int64) (referrers.Lister, error) {
	c, err := l.c.Client(ctx, registryID)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func newEnv(t *testing.T, up *upServer, ck cacheKind) *env {
	t.Helper()
	ctx := context.Background()
	fs, store := contenttest.Stores(t)
	box := registrytest.NewBox(t)
	reg := &meta.Registry{Name: "upstream", Type: upstream.TypeDockerRegistry, URL: up.URL, CredentialType: "basic"}
	_, err := store.CreateRegistry(ctx, reg)
	require.NoError(t, err)
	loc := local.New(fs, store, store, local.Options{})
	t.Cleanup(func() { _ = loc.Close() })
	clk := newClock()
	e := &env{t: t, up: up, clock: clk, store: store, fs: fs, local: loc, box: box, reg: reg,
		clients: upstream.NewClients(store, box, upstream.Options{})}
	e.project = e.newProject("cache", map[string]string{meta.MetaProxyReferrerAPI: "true"})
	e.cache = ck.new(t, clk)
	e.ctl, e.metrics = e.newController(e.cache, e.clients)
	return e
}

// newController builds a controller over the env's store on c, with its own metrics; tune adjusts the
// options.
func (e *env) newController(c cache.Cache, clients *upstream.Clients, tune ...func(*referrers.Options)) (*referrers.Controller, *metrics.Metrics) {
	m := metrics.New()
	opts := referrers.Options{Freshness: freshness, PageSize: 100, MaxPageSize: 500, Now: e.clock.Now}
	for _, f := range tune {
		f(&opts)
	}
	return referrers.New(e.local, e.store, listers{clients}, c, m, slog.New(slog.DiscardHandler), opts), m
}

// newProject creates a proxy-cache project of the env's registry.
func (e *env) newProject(name string, md map[string]string) *meta.Project {
	e.t.Helper()
	p := &meta.Project{Name: name, RegistryID: e.reg.ID, Metadata: md}
	_, err := e.store.CreateProject(context.Background(), p)
	require.NoError(e.t, err)
	return p
}

// repo names path in the env's project (or in p).
func (e *env) repo(path string, p ...*meta.Project) content.Repo {
	proj := e.project
	if len(p) > 0 {
		proj = p[0]
	}
	return content.Repo{Project: proj, Name: proj.Name + "/" + path, Path: path}
}

// list asks the controller for one page; rawQuery is the client's query (artifactType=...).
func (e *env) list(repo content.Repo, subject digest.Digest, rawQuery, last string, n int) (*content.ReferrersPage, error) {
	return listWith(e.ctl, repo, subject, rawQuery, last, n)
}

func listWith(ctl *referrers.Controller, repo content.Repo, subject digest.Digest, rawQuery, last string, n int) (*content.ReferrersPage, error) {
	q, _ := url.ParseQuery(rawQuery)
	return ctl.ListReferrers(context.Background(), repo, subject, content.ReferrersQuery{
		ArtifactType: q.Get("artifactType"), N: n, Last: last,
	})
}

// mustList is list that must succeed with the given cache status.
func (e *env) mustList(repo content.Repo, subject digest.Digest, rawQuery, status string) []ocispec.Descriptor {
	e.t.Helper()
	p, err := e.list(repo, subject, rawQuery, "", 0)
	require.NoError(e.t, err)
	require.Equal(e.t, status, p.Cache, "X-Cache")
	require.Empty(e.t, p.Next, "one page expected")
	return p.Manifests
}

// pushLocal pushes a into repo through the local service (blobs uploaded, then the manifest by digest).
func (e *env) pushLocal(repo content.Repo, a artifact) {
	e.t.Helper()
	ctx := context.Background()
	for _, b := range a.blobs {
		id, err := e.local.StartUpload(ctx, repo)
		require.NoError(e.t, err)
		_, err = e.local.AppendUpload(ctx, repo, id, -1, bytes.NewReader(b))
		require.NoError(e.t, err)
		_, err = e.local.CommitUpload(ctx, repo, id, digest.FromBytes(b))
		require.NoError(e.t, err)
	}
	res, err := e.local.PutManifest(ctx, repo, a.desc.Digest.String(), manifestMT, a.body)
	require.NoError(e.t, err)
	require.Equal(e.t, a.desc.Digest, res.Digest)
}

// key is the cache key of repo's unfiltered (or rawQuery) upstream answer for subject.
func (e *env) key(repo content.Repo, subject digest.Digest, rawQuery string) string {
	e.t.Helper()
	q, _ := url.ParseQuery(rawQuery)
	k, err := cachekey.Referrers(repo.Project.ID, repo.Project.RegistryID, repo.Path, subject, q)
	require.NoError(e.t, err)
	return k
}

// cached returns the decoded cache entry under key, or ok=false when there is none.
func (e *env) cached(key string) (cachekey.Entry, bool) {
	e.t.Helper()
	b, err := e.cache.Get(context.Background(), key)
	if err != nil {
		require.ErrorIs(e.t, err, cache.ErrMiss)
		return cachekey.Entry{}, false
	}
	ce, err := cachekey.Decode(b)
	require.NoError(e.t, err, "the cache holds an undecodable entry")
	return ce, true
}

// ---- assertions ----

// digests returns the digests of list in order.
func digests(list []ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, len(list))
	for i, d := range list {
		out[i] = d.Digest
	}
	return out
}

// descs returns the descriptors of as.
func descs(as ...artifact) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, len(as))
	for i, a := range as {
		out[i] = a.desc
	}
	return out
}

// requireCode checks that err is an OCI error with code c.
func requireCode(t *testing.T, err error, c errcode.Code) {
	t.Helper()
	require.Error(t, err)
	require.True(t, errcode.IsCode(err, c), "want %s, got %v", c.Value, err)
}

// counter reads one counter of a vector.
func counter(t *testing.T, v *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, v.WithLabelValues(labels...).Write(&m))
	return m.GetCounter().GetValue()
}

// eventually polls cond until it holds; the bound is a watchdog against a hang, not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// unreachableRedis is a Redis cache whose server does not exist.
func unreachableRedis(t *testing.T) cache.Cache {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	return cache.NewRedis(client, "berth-test:unreachable:")
}
