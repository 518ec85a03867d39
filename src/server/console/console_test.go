package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/secret"
)

const password = "Console-test-1"

// fakeReferrers answers a fixed list per subject, with the X-Cache value given, and records calls.
type fakeReferrers struct {
	lists map[digest.Digest][]ocispec.Descriptor
	cache string
	calls int
}

func (f *fakeReferrers) ListReferrers(_ context.Context, _ content.Repo, subject digest.Digest, _ content.ReferrersQuery) (*content.ReferrersPage, error) {
	f.calls++
	return &content.ReferrersPage{Manifests: f.lists[subject], Cache: f.cache}, nil
}

type env struct {
	t     *testing.T
	store contenttest.ManifestSource // the SQLite store, manifest bytes in memory (api.ArtifactSource)
	refs  *fakeReferrers
	srv   *httptest.Server
	now   time.Time
	pings []meta.Registry
	// pingErr is what the registry pinger answers (nil: the endpoint answers).
	pingErr error
	made    []*meta.Project // ProjectCreated calls
}

// publicProjects creates a public project of each name in e's store and returns their IDs in order.
func (e *env) publicProjects(t *testing.T, names ...string) []int64 {
	t.Helper()
	ids := make([]int64, len(names))
	for i, name := range names {
		id, err := e.store.CreateProject(context.Background(), &meta.Project{Name: name, Metadata: map[string]string{meta.MetaPublic: "true"}})
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func newTestEnv(t *testing.T) *env {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "berth.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	return newNode(t, store, nil)
}

// newNode serves a console over store with sessions in sess (nil: in memory), as one Berth node would.
func newNode(t *testing.T, store meta.Store, sess SessionStore) *env {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, secret.KeySize))
	require.NoError(t, err)
	e := &env{t: t, store: contenttest.NewManifestSource(store), refs: &fakeReferrers{lists: map[digest.Digest][]ocispec.Descriptor{}},
		now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	c, err := New(Deps{Projects: store, Registries: store, Artifacts: e.store, Referrers: e.refs,
		Auth: auth.NewAuthenticator(password), Box: box, Metrics: metrics.New(), SessionTTL: time.Hour, Sessions: sess,
		Pinger:         pingerFunc(func(_ context.Context, r meta.Registry) error { e.pings = append(e.pings, r); return e.pingErr }),
		Now:            func() time.Time { return e.now },
		ProjectCreated: func(_ context.Context, p *meta.Project) { e.made = append(e.made, p) }})
	require.NoError(t, err)
	e.srv = httptest.NewServer(c)
	t.Cleanup(e.srv.Close)
	return e
}

type pingerFunc func(ctx context.Context, r meta.Registry) error

func (f pingerFunc) PingRegistry(ctx context.Context, r meta.Registry) error { return f(ctx, r) }

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	resp, err := b.c.Get(b.e.srv.URL + path)
	require.NoError(b.e.t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.e.t, err)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	resp, err := b.c.PostForm(b.e.srv.URL+path, form)
	require.NoError(b.e.t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.e.t, err)
	return resp.StatusCode, string(body), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs in as the admin and returns the CSRF token of the session.
func (b *browser) login() string {
	status, _, h := b.post("/login", url.Values{"username": {"admin"}, "password": {password}, "next": {"/projects"}})
	require.Equal(b.e.t, http.StatusSeeOther, status)
	require.Equal(b.e.t, "/projects", h.Get("Location"))
	_, body, _ := b.get("/projects")
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(b.e.t, m, body)
	return m[1]
}

func TestLoginSessionCookie(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	status, body, _ := b.post("/login", url.Values{"username": {"admin"}, "password": {"wrong"}})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "Invalid username or password")

	status, _, h := b.post("/login", url.Values{"username": {"admin"}, "password": {password}, "next": {"//evil.example/x"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/projects", h.Get("Location"), "an off-site next is ignored")
	cookie := h.Get("Set-Cookie")
	for _, attr := range []string{"berth_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"} {
		require.Contains(t, cookie, attr)
	}
	require.NotContains(t, cookie, "Secure", "plain HTTP: no Secure attribute")
	_, body, _ = b.get("/projects")
	require.Contains(t, body, "Signed in as <strong>admin</strong>")

	// Expiry: an hour later the session is gone.
	e.now = e.now.Add(time.Hour)
	_, body, _ = b.get("/projects")
	require.NotContains(t, body, "Signed in as")

	// Logout ends the session on the server, not only in the browser.
	csrf := b.login()
	jarCookies := b.c.Jar.Cookies(mustURL(t, e.srv.URL))
	status, _, h = b.post("/logout", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Contains(t, h.Get("Set-Cookie"), "Max-Age=0")
	replay := e.browser()
	replay.c.Jar.SetCookies(mustURL(t, e.srv.URL), jarCookies)
	_, body, _ = replay.get("/projects")
	require.NotContains(t, body, "Signed in as", "the old cookie no longer works")
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestCSRFAndOrigin(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	csrf := b.login()
	status, _, _ := b.post("/projects", url.Values{"name": {"app"}})
	require.Equal(t, http.StatusForbidden, status, "no token")
	status, _, _ = b.post("/projects", url.Values{"name": {"app"}, "csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, status, "wrong token")
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/projects", strings.NewReader(url.Values{"name": {"app"}, "csrf": {csrf}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := b.c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "foreign origin")
	_, err = e.store.GetProjectByName(context.Background(), "app")
	require.ErrorIs(t, err, meta.ErrNotFound, "nothing changed")

	status, _, h := b.post("/projects", url.Values{"name": {"app"}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/projects/app", h.Get("Location"))
	anon := e.browser()
	status, _, _ = anon.post("/projects", url.Values{"name": {"other"}, "csrf": {csrf}})
	require.Equal(t, http.StatusUnauthorized, status, "a token without its session")
}

func TestProxyProjectAndConfiguration(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	csrf := b.login()
	status, _, _ := b.post("/registries", url.Values{"csrf": {csrf}, "name": {"hub"}, "type": {"docker-registry"},
		"url": {"https://registry.example/"}, "access_key": {"robot"}, "access_secret": {"s3cret-value"}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Len(t, e.pings, 1)
	require.Equal(t, "s3cret-value", e.pings[0].AccessSecret, "the ping gets the plaintext")
	regs, _, err := e.store.ListRegistries(context.Background(), "", 0, 0)
	require.NoError(t, err)
	require.Len(t, regs, 1)
	require.NotEqual(t, "s3cret-value", regs[0].AccessSecret, "stored sealed")
	for _, page := range []string{"/registries", fmt.Sprintf("/registries/%d", regs[0].ID)} {
		_, body, _ := b.get(page)
		require.Contains(t, body, "https://registry.example")
		require.NotContains(t, body, "s3cret-value", page)
		require.NotContains(t, body, regs[0].AccessSecret, page)
	}

	status, body, _ := b.post("/projects", url.Values{"csrf": {csrf}, "name": {"cache"}, "registry_id": {fmt.Sprint(regs[0].ID)},
		"proxy_referrer_api": {"on"}, "cache_seconds": {"0"}})
	require.Equal(t, http.StatusSeeOther, status, body)
	p, err := e.store.GetProjectByName(context.Background(), "cache")
	require.NoError(t, err)
	require.True(t, p.ProxyReferrerAPI())
	require.False(t, p.Public())
	require.Equal(t, "0", p.Metadata[meta.MetaProxyReferrerCacheSecond])
	require.Len(t, e.made, 1, "ProjectCreated is called (serve gives a proxy-cache project its retention policy there)")
	require.Equal(t, p.ID, e.made[0].ID)
	require.True(t, e.made[0].IsProxy())

	status, _, _ = b.post("/projects/cache/config", url.Values{"csrf": {csrf}, "public": {"on"}, "cache_seconds": {"30"}})
	require.Equal(t, http.StatusSeeOther, status)
	p, err = e.store.GetProjectByName(context.Background(), "cache")
	require.NoError(t, err)
	require.False(t, p.ProxyReferrerAPI(), "the unchecked toggle turns it off")
	require.True(t, p.Public())
	require.Equal(t, "30", p.Metadata[meta.MetaProxyReferrerCacheSecond])

	status, body, _ = b.post("/projects/cache/config", url.Values{"csrf": {csrf}, "cache_seconds": {"-1"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "whole number of seconds")
	status, body, _ = b.post("/projects", url.Values{"csrf": {csrf}, "name": {"Bad Name"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "is invalid")
}

func TestAnonymousSeesPublicProjectsOnly(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for name, public := range map[string]string{"open": "true", "secret-team": "false"} {
		_, err := e.store.CreateProject(ctx, &meta.Project{Name: name, Metadata: map[string]string{meta.MetaPublic: public}})
		require.NoError(t, err)
	}
	anon := e.browser()
	_, body, _ := anon.get("/projects")
	require.Contains(t, body, `href="/projects/open"`)
	require.NotContains(t, body, "secret-team")
	status, _, h := anon.get("/projects/secret-team")
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/login?next=%2Fprojects%2Fsecret-team", h.Get("Location"))
	status, _, _ = anon.get("/projects/nope")
	require.Equal(t, http.StatusSeeOther, status, "missing and private look alike")
	for _, page := range []string{"/registries", "/cache"} {
		status, _, _ = anon.get(page)
		require.Equal(t, http.StatusSeeOther, status, page)
	}
	admin := e.browser()
	admin.login()
	_, body, _ = admin.get("/projects")
	require.Contains(t, body, "secret-team")
	status, _, _ = admin.get("/projects/nope")
	require.Equal(t, http.StatusNotFound, status)
}

func TestArtifactPageAndReferrersTree(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	pid := e.publicProjects(t, "lib")[0]
	child := digest.FromString("child")
	index := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":5,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`, child)
	subject := digest.FromString(index)
	e.store.Manifests[subject.String()] = []byte(index)
	require.NoError(t, e.store.PutArtifact(ctx, pid, "lib/team/app", &meta.Artifact{Digest: subject.String(),
		MediaType: "application/vnd.oci.image.index.v1+json", Size: int64(len(index))}, "v1"))
	local := digest.FromString("local signature")
	require.NoError(t, e.store.PutArtifact(ctx, pid, "lib/team/app", &meta.Artifact{Digest: local.String(),
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", Size: 9, Subject: subject.String()}, ""))
	remote := digest.FromString("upstream sbom")
	nested := digest.FromString("signature of the sbom")
	e.refs.cache = content.CacheMiss
	e.refs.lists[subject] = []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: local, Size: 9, ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json"},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: remote, Size: 7, ArtifactType: "application/spdx+json"},
	}
	e.refs.lists[remote] = []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: nested, Size: 3, ArtifactType: "application/vnd.cncf.notary.signature"}}

	b := e.browser()
	status, body, _ := b.get("/projects/lib/repository?name=team/app")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "linux/arm64/v8")
	require.Contains(t, body, `<span class="tag">v1</span>`)
	require.NotContains(t, body, shortDigest(local.String()), "referrers are not top-level artifacts")

	status, body, _ = b.get("/projects/lib/artifact?repo=team/app&digest=" + url.QueryEscape(subject.String()))
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `value="`+strings.TrimPrefix(e.srv.URL, "http://")+"/lib/team/app@"+subject.String()+`"`, "pull by digest")
	require.Contains(t, body, "X-Cache: MISS")
	require.Regexp(t, `data-digest="`+local.String()+`" data-source="local"`, body)
	require.Regexp(t, `data-digest="`+remote.String()+`" data-source="upstream"`, body)
	require.Regexp(t, `data-digest="`+nested.String()+`" data-source="upstream"`, body, "nested referrers")
	require.Contains(t, body, "signature.cosign")
	require.Contains(t, body, "signature.notation")

	status, _, _ = b.get("/projects/lib/artifact?repo=team/app&digest=sha256:nothex")
	require.Equal(t, http.StatusBadRequest, status)
	status, _, _ = b.get("/projects/lib/artifact?repo=team/app&digest=" + digest.FromString("absent").String())
	require.Equal(t, http.StatusNotFound, status)
}

func TestStaticAndSecurityHeaders(t *testing.T) {
	e := newTestEnv(t)
	b := e.browser()
	status, body, h := b.get("/static/app.js")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "data-copy")
	require.Contains(t, h.Get("Content-Security-Policy"), "script-src 'self'")
	status, _, h = b.get("/nowhere")
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))
}

// TestProjectsStorageUsed: the projects page shows each project's distinct blob and manifest bytes.
func TestProjectsStorageUsed(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	pid := e.publicProjects(t, "lib", "empty")[0]
	for _, repo := range []string{"lib/a", "lib/b"} { // the same layer and manifest in two repositories count once
		require.NoError(t, e.store.LinkBlob(ctx, pid, repo, digest.FromString("layer").String(), 3<<20))
		require.NoError(t, e.store.PutArtifact(ctx, pid, repo, &meta.Artifact{Digest: digest.FromString("m").String(),
			MediaType: ocispec.MediaTypeImageManifest, Size: 500}, "v1"))
	}
	_, body, _ := e.browser().get("/projects")
	require.Contains(t, body, "Storage used")
	require.Regexp(t, `href="/projects/lib">lib</a>(?s:.)*?<td data-bytes="3146228">3.0 MiB</td>`, body)
	require.Regexp(t, `href="/projects/empty">empty</a>(?s:.)*?<td data-bytes="0">0 B</td>`, body)
}

// TestLastPullShown: the repository and artifact pages show the artifact's pull time, the field the
// API returns as pull_time, and "never" before the first pull.
func TestLastPullShown(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	pid := e.publicProjects(t, "lib")[0]
	d := digest.FromString("manifest").String()
	require.NoError(t, e.store.PutArtifact(ctx, pid, "lib/app", &meta.Artifact{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Size: 5}, "v1"))
	b := e.browser()
	pages := []string{"/projects/lib/repository?name=app", "/projects/lib/artifact?repo=app&digest=" + url.QueryEscape(d)}
	for _, p := range pages {
		status, body, _ := b.get(p)
		require.Equal(t, http.StatusOK, status, body)
		require.Regexp(t, `<(td|dd)>never</(td|dd)>`, body, p)
	}
	pulled := time.Date(2026, 4, 30, 8, 9, 10, 0, time.UTC)
	require.NoError(t, e.store.TouchPull(ctx, "lib/app", d, pulled))
	for _, p := range pages {
		_, body, _ := b.get(p)
		require.Contains(t, body, "2026-04-30 08:09:10 UTC", p)
		require.NotContains(t, body, ">never<", p)
	}
}
