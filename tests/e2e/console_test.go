package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds one browser step (a page load and what it waits for).
const browserTimeout = 60 * time.Second

// chromiumPath returns Debian's chromium (BERTH_CHROMIUM overrides; scripts/ensure-services.sh installs
// it), or reports it missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BERTH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium not found (BERTH_CHROMIUM; scripts/ensure-services.sh installs Debian's chromium)")
	return ""
}

// browser is one headless chromium with a profile of its own, pointed at a Berth server.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot int
}

// newBrowser starts headless chromium with the flags a CI machine needs (no sandbox as root, no GPU,
// no background traffic to Google) and a fresh user-data-dir.
func newBrowser(t *testing.T, srv *server) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: srv.URL}
	require.NoError(t, chromedp.Do(ctx), "start chromium") // the first run starts the browser, without a timeout
	return b
}

// do runs steps with a timeout.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...))
}

// get runs one action that returns a value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err)
	return v
}

// open loads a page of the console and waits for its main element.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
}

// screenshot saves the page as tests/results/e2e-console/<test>-<n>-<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "results", "e2e-console")
	require.NoError(b.t, os.MkdirAll(dir, 0o750))
	b.shot++
	file := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())+"-"+
		strconv.Itoa(b.shot)+"-"+name+".png")
	require.NoError(b.t, os.WriteFile(file, png, 0o600))
	b.t.Logf("screenshot %s", file)
}

func (b *browser) login(password string) {
	b.t.Helper()
	b.open("/login")
	b.do(chromedp.SendKeys(chromedp.ID("username"), adminUser), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS(".who strong")))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, chromedp.Text(chromedp.CSS(sel)))
}

// TestConsole drives the web console in headless chromium: log in, add the upstream, create a
// proxy-cache project with the Proxy Referrer API on, pull an image and its cosign signature through
// it, find the signature (and the upstream's SBOM) in the artifact page's referrers tree; turn the toggle
// off and see the upstream-only referrers go; a state change without the CSRF token is refused; an
// anonymous visitor does not see a private project.
func TestConsole(t *testing.T) {
	t.Parallel()
	tools := []string{"oras", "crane", "cosign"}
	toolsDir(t, tools...)
	chromiumPath(t)

	// --- upstream: an image signed by cosign (bundle, a referrer)
	up := ggcrUpstream(t)
	sc := up.clients(t, tools...)
	repo := up.Host + "/" + upstreamRepo
	dig := sc.pushImage(repo+":v1", "shown in the console\n")
	sc.must("cosign", "generate-key-pair")
	sc.must("cosign", cosignSignArgs(repo+"@"+dig)...)
	upRefs := sc.discover(repo+"@"+dig, "")
	require.Len(t, upRefs, 1, "upstream referrers: %+v", upRefs)
	sig := upRefs[0].Digest

	proxy := startServer(t, serverConfig{})
	b := newBrowser(t, proxy)
	b.login(proxy.AdminPassword)
	createProxyProjectInBrowser(t, b, up.URL)

	// --- pull the image and its signature through the proxy
	psubj := proxy.Host + "/cache/" + upstreamRepo + "@" + dig
	sc.must("crane", "pull", "--format", "oci", psubj, "pulled")
	require.Equal(t, 1, sc.cosignVerify(psubj), "cosign verify through the proxy")
	// An SBOM attached upstream afterwards: Berth has never pulled it, only the upstream lists it.
	sc.writeFile("sbom.json", []byte(`{"components":["console"]}`))
	sbom := sc.orasAttach(repo+"@"+dig, typeSBOM, "sbom.json:application/json")

	checkStorageUsed(t, b, sc, repo+"@"+dig) // from the upstream: a pull through Berth would prefetch the SBOM
	checkReferrersTree(t, b, proxy, dig, sig, sbom.Digest)
	checkCSRFRefused(t, b)
	checkAnonymous(t, b, proxy)
}

// createProxyProjectInBrowser adds the upstream under Registries and creates the public proxy-cache
// project "cache" on it with the Proxy Referrer API on and freshness 0, through the forms.
func createProxyProjectInBrowser(t *testing.T, b *browser, upstreamURL string) {
	t.Helper()
	b.open("/registries")
	b.do(chromedp.SendKeys(chromedp.ID("r-name"), "upstream"), chromedp.SetValue(chromedp.ID("r-type"), "docker-registry"),
		chromedp.SendKeys(chromedp.ID("r-url"), upstreamURL), chromedp.Submit(chromedp.ID("r-url")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/registries/1"]`)))
	require.Contains(t, b.text("main table"), upstreamURL)
	b.screenshot("registries")

	b.open("/projects")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "cache"), chromedp.Click(chromedp.CSS(`#new-project ~ form input[name="public"]`)),
		chromedp.SetValue(chromedp.ID("registry_id"), "1"), chromedp.Click(chromedp.ID("proxy_referrer_api")),
		chromedp.SendKeys(chromedp.ID("cache_seconds"), "0"), chromedp.Submit(chromedp.ID("name")),
		chromedp.WaitVisible(chromedp.ID("toggle-state")))
	require.Equal(t, "Proxy Referrer API on", b.text("#toggle-state"))
	b.screenshot("proxy-project")
}

// checkReferrersTree finds the signature (held by Berth) and the SBOM (upstream only) on the artifact
// page, checks the cache page, then turns the toggle off and sees the SBOM go.
func checkReferrersTree(t *testing.T, b *browser, proxy *server, dig, sig, sbom string) {
	t.Helper()
	artifactPage := "/projects/cache/artifact?repo=" + url.QueryEscape(upstreamRepo) + "&digest=" + url.QueryEscape(dig)
	b.open(artifactPage)
	tree := get(b, chromedp.OuterHTML(chromedp.ID("referrers-tree")))
	require.Contains(t, tree, `data-digest="`+sig+`" data-source="local"`, "the pulled signature, held by Berth:\n%s", tree)
	require.Contains(t, tree, typeCosignBundle)
	require.Contains(t, tree, `data-digest="`+sbom+`" data-source="upstream"`, "the upstream's SBOM:\n%s", tree)
	require.Equal(t, proxy.Host+"/cache/"+upstreamRepo+"@"+dig, get(b, chromedp.Value(chromedp.ID("pull-cmd"))))
	b.screenshot("referrers-on")
	// The same page on a phone-sized screen.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("referrers-tree")))
	b.screenshot("referrers-phone")
	b.do(chromedp.EmulateViewport(1280, 900))

	// The cache page counts the proxied referrers requests (the console's own included).
	b.open("/cache")
	cacheText := b.text("main")
	require.Contains(t, cacheText, "upstream ok")
	require.Contains(t, cacheText, "MISS")
	b.screenshot("cache")

	// Toggle off: only what Berth holds.
	b.open("/projects/cache")
	b.do(chromedp.Click(chromedp.ID("proxy_referrer_api")), chromedp.Submit(chromedp.ID("proxy_referrer_api")),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	require.Equal(t, "Proxy Referrer API off", b.text("#toggle-state"))
	b.open(artifactPage)
	tree = get(b, chromedp.OuterHTML(chromedp.ID("referrers-tree")))
	require.NotContains(t, tree, sbom, "the upstream-only SBOM is gone with the toggle off:\n%s", tree)
	require.Contains(t, tree, `data-digest="`+sig+`" data-source="local"`, "the signature Berth holds stays")
	b.screenshot("referrers-off")
}

// checkCSRFRefused posts a change from the logged-in browser without the token: 403, nothing changes.
func checkCSRFRefused(t *testing.T, b *browser) {
	t.Helper()
	status := get(b, chromedp.Evaluate[int](`fetch("/projects/cache/config", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "public=on&proxy_referrer_api=on"})
		.then(r => r.text().then(t => { document.documentElement.innerHTML = t; return r.status; }))`, chromedp.EvalAwaitPromise))
	require.Equal(t, 403, status)
	require.Contains(t, b.text("main"), "CSRF")
	b.screenshot("csrf-refused")
	b.open("/projects/cache")
	require.Equal(t, "Proxy Referrer API off", b.text("#toggle-state"), "the refused change did not apply")
}

// checkAnonymous creates a private project and checks that a browser without a session neither lists
// nor opens it.
func checkAnonymous(t *testing.T, b *browser, proxy *server) {
	t.Helper()
	b.open("/projects")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "internal"), chromedp.Submit(chromedp.ID("name")),
		chromedp.WaitVisible(chromedp.CSS(".badge.private")))
	anon := newBrowser(t, proxy)
	anon.open("/projects")
	list := anon.text("main table")
	require.Contains(t, list, "cache")
	require.NotContains(t, list, "internal")
	anon.screenshot("anonymous-projects")
	anon.open("/projects/internal")
	loc := get(anon, chromedp.Location())
	require.Contains(t, loc, "/login?next=%2Fprojects%2Finternal", "an anonymous visitor is asked to log in")
	anon.screenshot("anonymous-private")
}

// checkStorageUsed reads the proxy project's "Storage used" on the projects page: at least the image
// pulled through (manifest, config, layers, as crane reports them from ref, the upstream) and at most
// that plus a few KiB for the cosign bundle pulled with it.
func checkStorageUsed(t *testing.T, b *browser, c *clients, ref string) {
	t.Helper()
	body := c.must("crane", "manifest", ref)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	want := int64(len(body)) + m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	b.open("/projects")
	cell := `document.querySelector('a[href="/projects/cache"]').closest("tr").querySelector("td[data-bytes]")`
	got, err := strconv.ParseInt(get(b, chromedp.Evaluate[string](cell+".dataset.bytes")), 10, 64)
	require.NoError(t, err)
	require.Regexp(t, `^[0-9.]+ (B|KiB|MiB)$`, get(b, chromedp.Evaluate[string](cell+".textContent")))
	require.GreaterOrEqual(t, got, want, "storage used holds the image")
	require.Less(t, got, want+64<<10, "and little more than the image and its signature")
	b.screenshot("projects-storage")
}
