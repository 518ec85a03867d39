package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
	berthhttp "github.com/berth-registry/berth/src/server/registry"
)

func TestMain(m *testing.M) { registrytest.Main(m) }

// project is the name of the proxy-cache project every env creates.
const project = "cache"

const adminPassword = "admin-pw"

// hits counts the requests that reach an upstream, by method and path. It sits outermost, so requests
// answered by a fault count too.
type hits struct {
	mu sync.Mutex
	n  map[string]int // "METHOD /v2/..." -> requests
}

func newHits() *hits { return &hits{n: map[string]int{}} }

func (h *hits) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n[r.Method+" "+r.URL.Path]++
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// count returns the requests with method whose path is of kind ("manifests", "blobs", "tags").
func (h *hits) count(method, kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for k, n := range h.n {
		m, path, _ := strings.Cut(k, " ")
		if m == method && strings.Contains(path, "/"+kind+"/") {
			total += n
		}
	}
	return total
}

// path returns the requests with method on exactly path.
func (h *hits) path(method, path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[method+" "+path]
}

// fault intercepts upstream requests: it answers r itself or passes it on to next.
type fault func(w http.ResponseWriter, r *http.Request, next http.Handler)

// faults holds the fault currently injected in front of an upstream (none: requests pass).
type faults struct {
	mu sync.Mutex
	f  fault
}

func (f *faults) set(x fault) {
	f.mu.Lock()
	f.f = x
	f.mu.Unlock()
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		x := f.f
		f.mu.Unlock()
		if x == nil {
			next.ServeHTTP(w, r)
			return
		}
		x(w, r, next)
	})
}

// kindOf reports whether r is a request of method (any when "") on a path of kind.
func kindOf(r *http.Request, method, kind string) bool {
	return (method == "" || r.Method == method) && strings.Contains(r.URL.Path, "/"+kind+"/")
}

// failWith answers requests of method and kind with status and an OCI error body.
func failWith(method, kind string, status int) fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !kindOf(r, method, kind) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}`)
	}
}

// upstream is a test registry with request counting and fault injection.
type upServer struct {
	*registrytest.Server
	hits   *hits
	faults *faults
}

type upstreamKind int

const (
	distribution upstreamKind = iota
	ggcr
)

func (k upstreamKind) String() string { return [...]string{"distribution", "ggcr"}[k] }

// newUpstream starts a registry of kind; extra options (auth, max tags) are applied before the counting
// and fault wrappers, so those sit outermost.
// newImageEnv starts an upstream of kind holding one image pushed as repo:tag ("" for untagged), and
// an env that proxies it.
func newImageEnv(t *testing.T, kind upstreamKind, repo, tag string) (*env, *upServer, registrytest.Image) {
	t.Helper()
	up := newUpstream(t, kind)
	img := up.PushImage(t, repo, tag)
	return newEnv(t, up), up, img
}

// newBlobUpstream starts an upstream of kind holding size random bytes as a blob of repository "app".
func newBlobUpstream(t *testing.T, kind upstreamKind, size int) (*upServer, []byte, digest.Digest) {
	t.Helper()
	up := newUpstream(t, kind)
	data := randomBytes(size)
	return up, data, up.PushBlob(t, "app", data).Digest
}

func newUpstream(t *testing.T, kind upstreamKind, opts ...registrytest.Option) *upServer {
	t.Helper()
	u := &upServer{hits: newHits(), faults: &faults{}}
	opts = append(opts, registrytest.WithWrapper(u.faults.wrap), registrytest.WithWrapper(u.hits.wrap))
	switch kind {
	case ggcr:
		u.Server = registrytest.NewGGCR(t, true, opts...)
	default:
		u.Server = registrytest.NewDistribution(t, opts...)
	}
	return u
}

// env is the real pull-through stack: meta on a SQLite file, storage.FS, the local service, the proxy
// over proxy.Clients, and the /v2/ handler in an httptest server, with one proxy-cache project "cache"
// whose registry row points at the upstream.
type env struct {
	t       *testing.T
	up      *upServer
	store   meta.Store
	box     *secret.Box
	fs      *storage.FS
	root    string // storage root
	local   *local.Service
	svc     *proxy.Service
	project *meta.Project
	srv     *httptest.Server
	opts    proxy.Options // of the proxy service serve builds
}

// registryRow is how the env's registry row is configured.
type registryRow struct {
	Type     string // "" for docker-registry
	Username string
	Password string
}

func newEnv(t *testing.T, up *upServer, row ...registryRow) *env {
	t.Helper()
	var rr registryRow
	if len(row) > 0 {
		rr = row[0]
	}
	ctx := context.Background()
	fs, store := contenttest.Stores(t)
	root := fs.Root()
	box := registrytest.NewBox(t)
	var err error
	reg := &meta.Registry{Name: "upstream", Type: rr.Type, URL: up.URL, CredentialType: "basic", AccessKey: rr.Username}
	if rr.Type == "" {
		reg.Type = upstream.TypeDockerRegistry
	}
	if rr.Password != "" {
		reg.AccessSecret, err = box.Seal(rr.Password)
		require.NoError(t, err)
	}
	_, err = store.CreateRegistry(ctx, reg)
	require.NoError(t, err)
	p := &meta.Project{Name: project, RegistryID: reg.ID}
	contenttest.CreateProjects(t, store, p)

	loc := local.New(fs, store, store, local.Options{Pulls: store})
	t.Cleanup(func() { _ = loc.Close() })
	e := &env{t: t, up: up, store: store, box: box, fs: fs, root: root, local: loc, project: p}
	e.serve(store)
	return e
}

// serve (re)starts the proxy service and the /v2/ server, with the proxy linking blobs through links.
func (e *env) serve(links meta.BlobLinkStore) {
	log := slog.New(slog.DiscardHandler)
	e.svc = proxy.New(e.local, proxy.NewClients(e.store, e.box, upstream.Options{}), e.fs, links, log, e.opts)
	e.srv = httptest.NewServer(berthhttp.New(e.svc, e.store, auth.NewAuthenticator(adminPassword), log, berthhttp.Options{}))
	e.t.Cleanup(e.srv.Close)
	// Downloads outlive the responses that started them: let them end before the temp dirs go.
	svc := e.svc
	e.t.Cleanup(func() { _ = svc.WaitFills(context.Background()) })
}

// repo names path inside the proxy project.
func (e *env) repo(path string) content.Repo {
	return content.Repo{Project: e.project, Name: project + "/" + path, Path: path}
}

// response is a fully read Berth response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends method to Berth's /v2/<project>/<rest> as the admin.
func (e *env) do(method, rest, contentType string, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/v2/"+project+"/"+rest, bytes.NewReader(body))
	require.NoError(e.t, err)
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.SetBasicAuth(auth.AdminUser, adminPassword)
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err, "%s %s", method, rest)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(rest string) response { return e.do(http.MethodGet, rest, "", nil) }

// requireOK checks a 200 whose body is want.
func requireOK(t *testing.T, r response, want []byte) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.True(t, bytes.Equal(want, r.body), "body differs: got %d bytes, want %d", len(r.body), len(want))
}

// requireCode checks an OCI error response.
func requireCode(t *testing.T, r response, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	var eb struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(r.body, &eb), "body: %s", r.body)
	require.NotEmpty(t, eb.Errors, "body: %s", r.body)
	require.Equal(t, code, eb.Errors[0].Code, "body: %s", r.body)
}

// settle waits until every blob download started so far is stored or failed: a client's response ends
// as soon as its blob is verified, before the blob is made durable and linked.
func (e *env) settle() {
	e.t.Helper()
	require.NoError(e.t, e.svc.WaitFills(e.t.Context()))
}

// requireStored checks (once the downloads settled) that storage holds exactly data under its digest.
func (e *env) requireStored(d digest.Digest, data []byte) {
	e.t.Helper()
	e.settle()
	b, err := e.fs.Open(context.Background(), d)
	require.NoError(e.t, err, "blob %s not stored", d)
	defer func() { _ = b.Close() }()
	got, err := io.ReadAll(b)
	require.NoError(e.t, err)
	require.True(e.t, bytes.Equal(data, got), "stored bytes of %s differ", d)
}

// requireNotStored checks (once the downloads settled) that storage does not hold d and that the
// repository has no link to it.
func (e *env) requireNotStored(d digest.Digest) {
	e.t.Helper()
	e.settle()
	_, err := e.fs.Open(context.Background(), d)
	require.ErrorIs(e.t, err, storage.ErrNotFound, "blob %s stored", d)
	entries, err := os.ReadDir(filepath.Join(e.root, "tmp"))
	require.NoError(e.t, err)
	require.Empty(e.t, entries, "temporary files left behind")
}

// requireNoTemp checks (once the downloads settled) that no temporary write is left in storage.
func (e *env) requireNoTemp() {
	e.t.Helper()
	e.settle()
	entries, err := os.ReadDir(filepath.Join(e.root, "tmp"))
	require.NoError(e.t, err)
	require.Empty(e.t, entries, "temporary files left behind")
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
