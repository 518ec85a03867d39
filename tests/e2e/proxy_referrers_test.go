package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// cosignSignArgs signs offline with cosign.key over plain HTTP (no transparency log), by digest.
func cosignSignArgs(ref string, extra ...string) []string {
	args := []string{"sign", "--key", "cosign.key", "--allow-http-registry", "--use-signing-config=false", "--tlog-upload=false", "-y"}
	return append(append(args, extra...), ref)
}

// cosignVerify verifies ref with cosign.pub (extra: e.g. --new-bundle-format=false) and returns how many
// signatures cosign reports verified.
func (c *clients) cosignVerify(ref string, extra ...string) int {
	c.t.Helper()
	args := append([]string{"verify", "--key", "cosign.pub", "--allow-http-registry", "--insecure-ignore-tlog=true", "--output", "json"}, extra...)
	out := c.must("cosign", append(args, ref)...)
	var verified []json.RawMessage
	require.NoError(c.t, json.Unmarshal([]byte(out), &verified), "cosign verify %s output:\n%s", ref, out)
	return len(verified)
}

// setUpNotation creates a test signing key and certificate and trusts it for every registry.
func (c *clients) setUpNotation() {
	c.t.Helper()
	c.must("notation", "cert", "generate-test", "--default", "test")
	c.writeFile("trustpolicy.json", []byte(notationTrustPolicy))
	c.must("notation", "policy", "import", "--force", "trustpolicy.json")
}

// TestProxyReferrersUpstreams signs and attests an image on each kind of upstream — CNCF distribution
// (no referrers API: the tag schema), go-containerregistry (referrers API that ignores artifactType and
// reports config media types) and another Berth (full API, 10 referrers per page) — with cosign (bundle
// and legacy .sig tag), notation and oras, then checks through a Berth proxy-cache project with the Proxy
// Referrer API on: every verify passes, oras discover lists exactly the upstream referrers (filtered and
// not); referrers pushed into the proxy project join them; with the toggle off only what Berth holds is
// listed; with the upstream stopped every verify still passes.
func TestProxyReferrersUpstreams(t *testing.T) {
	t.Parallel()
	tools := []string{"oras", "crane", "cosign", "notation"}
	toolsDir(t, tools...)
	cases := []struct {
		name  string
		start func(t *testing.T) *upstream
	}{
		{"distribution", func(t *testing.T) *upstream { return distributionUpstream(t) }},
		{"ggcr", func(t *testing.T) *upstream { return ggcrUpstream(t) }},
		{"berth", berthUpstream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := tc.start(t)
			testProxyReferrersUpstream(t, up, tools)
		})
	}
}

func testProxyReferrersUpstream(t *testing.T, up *upstream, tools []string) {
	// --- upstream: an image signed twice by cosign, once by notation, with an SBOM attached
	sc := up.clients(t, tools...)
	repo := up.Host + "/" + upstreamRepo
	dig := sc.pushImage(repo+":v1", "signed on "+up.Name+"\n")
	subject := repo + "@" + dig
	sc.must("cosign", "generate-key-pair")
	sc.must("cosign", cosignSignArgs(subject)...)
	sc.must("cosign", cosignSignArgs(subject, "--new-bundle-format=false")...)
	sc.setUpNotation()
	sc.must("notation", "sign", "--insecure-registry", subject)
	sc.writeFile("sbom.json", []byte(`{"components":["`+up.Name+`"]}`))
	sbom := sc.orasAttach(subject, typeSBOM, "sbom.json:application/json")
	require.Contains(t, sc.tags(repo), fallbackTag(dig)+".sig", "cosign --new-bundle-format=false must write the .sig tag upstream")
	upstreamRefs := sc.discover(subject, "")
	require.Len(t, upstreamRefs, 3, "referrers upstream (the client's own view): %+v", upstreamRefs)
	require.Contains(t, digests(upstreamRefs), sbom.Digest)

	// --- the proxy: freshness 0, so every referrers request asks the upstream (and the outage below
	// exercises the stale answer, not a fresh cache hit)
	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream-"+up.Name, up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id, "proxy_referrer_cache_seconds", "0")
	projRepo := "cache/" + upstreamRepo
	pref := proxy.Host + "/" + projRepo
	psubj := pref + "@" + dig

	upTypes := sortedStrings(typeCosignBundle, typeNotation, typeSBOM)
	all := sc.discover(psubj, "")
	require.Equal(t, upTypes, artifactTypes(all), "oras discover through the proxy: %+v", all)
	require.Equal(t, digests(upstreamRefs), digests(all), "the proxy lists the upstream's referrers")
	for _, typ := range upTypes {
		only := sc.discover(psubj, typ)
		require.Len(t, only, 1, "oras discover --artifact-type %s through the proxy: %+v", typ, only)
		require.Equal(t, typ, only[0].ArtifactType)
	}
	require.Empty(t, sc.discover(psubj, "application/vnd.berth.e2e.absent"), "filter on an absent type")
	res := checkReferrersAPI(t, proxy, projRepo, dig, typeNotation, 1)
	require.Equal(t, "artifactType", res.Header.Get("OCI-Filters-Applied"), "a filter the proxy applied is announced:\n%s", res)
	// Spec descriptors whatever the upstream sent: the manifest's artifactType and annotations.
	raw := getReferrers(t, proxy, "/v2/"+projRepo+"/referrers/"+dig)
	require.Len(t, raw.index.Manifests, 3, "%s", raw.res)
	for _, d := range raw.index.Manifests {
		require.Equal(t, ocispec.MediaTypeImageManifest, d.MediaType, "%s", raw.res)
		require.Contains(t, upTypes, d.ArtifactType, "%s", raw.res)
		if d.Digest.String() == sbom.Digest {
			require.Equal(t, fixedCreated, d.Annotations[ocispec.AnnotationCreated], "the SBOM's annotations:\n%s", raw.res)
		}
	}
	// A repository or subject the upstream does not know: an empty list, never a 404.
	checkReferrersAPI(t, proxy, "cache/lib/absent", dig, "", 0)
	checkReferrersAPI(t, proxy, projRepo, sha256Digest([]byte("no such subject")), "", 0)

	require.Equal(t, 1, sc.cosignVerify(psubj), "cosign verify (bundle) through the proxy")
	require.Equal(t, 1, sc.cosignVerify(psubj, "--new-bundle-format=false"), "cosign verify (legacy .sig tag) through the proxy")
	sc.must("notation", "verify", "--insecure-registry", psubj)

	// --- local referrers pushed into the proxy project (oras attach, cosign sign) join the upstream ones
	pa := newClients(t, proxy, "oras", "crane", "cosign")
	pa.loginOras()
	pa.writeFile("cosign.key", sc.readFile("cosign.key"))
	pa.writeFile("cosign.pub", sc.readFile("cosign.pub"))
	pa.writeFile("note.txt", []byte("reviewed locally\n"))
	note := pa.orasAttach(psubj, typeSig, "note.txt:text/plain")
	pa.must("cosign", cosignSignArgs(psubj)...)
	all = sc.discover(psubj, "")
	require.Equal(t, sortedStrings(typeCosignBundle, typeCosignBundle, typeNotation, typeSBOM, typeSig), artifactTypes(all),
		"upstream and local referrers through the proxy: %+v", all)
	for _, d := range upstreamRefs {
		require.Contains(t, digests(all), d.Digest)
	}
	require.Contains(t, digests(all), note.Digest)
	localDigests := map[string]bool{}
	for _, d := range all {
		if !slices.Contains(digests(upstreamRefs), d.Digest) {
			localDigests[d.Digest] = true
		}
	}
	require.Len(t, localDigests, 2, "two referrers pushed into the proxy: %+v", all)
	require.Len(t, sc.discover(psubj, typeCosignBundle), 2, "cosign bundles: the upstream's and the local one")
	require.Equal(t, 2, sc.cosignVerify(psubj), "cosign verify sees the upstream and the local bundle")
	require.Len(t, sc.discover(subject, ""), 3, "local pushes stay in the proxy, not upstream")

	// --- toggle off: only what Berth holds. A second subject with an upstream SBOM, pulled through
	// only with the toggle off (so nothing prefetched its referrers), lists exactly the local referrer.
	dig2 := sc.pushImage(repo+":v2", "second subject on "+up.Name+"\n")
	sbom2 := sc.orasAttach(repo+"@"+dig2, typeSBOM, "sbom.json:application/json")
	dig3 := sc.pushImage(repo+":v3", "third subject on "+up.Name+"\n")
	proxy.setProxyReferrerAPI(t, "cache", false)
	note2 := pa.orasAttach(pref+"@"+dig2, typeSig, "note.txt:text/plain")
	note3 := pa.orasAttach(pref+"@"+dig3, typeSig, "note.txt:text/plain") // never listed with the toggle on
	off := sc.discover(pref+"@"+dig2, "")
	require.Equal(t, []string{note2.Digest}, digests(off), "toggle off: only the local referrer: %+v", off)
	require.Empty(t, sc.discover(pref+"@"+dig2, typeSBOM), "toggle off: the upstream SBOM is not listed")
	checkReferrersAPI(t, proxy, projRepo, dig2, "", 1)
	// The first subject: its local pushes and the upstream referrers pulled through by the verifies
	// (the cosign bundle and the notation signature); the SBOM only if a prefetch fetched it.
	off = sc.discover(psubj, "")
	for d := range localDigests {
		require.Contains(t, digests(off), d, "toggle off lists local referrers: %+v", off)
	}
	for _, d := range all {
		if d.ArtifactType != typeSBOM {
			require.Contains(t, digests(off), d.Digest, "toggle off lists pulled-through referrers: %+v", off)
		}
	}
	for _, d := range off {
		require.Contains(t, digests(all), d.Digest, "toggle off lists nothing unknown: %+v", off)
	}
	proxy.setProxyReferrerAPI(t, "cache", true)
	on := sc.discover(pref+"@"+dig2, "")
	require.Equal(t, sortedStrings(sbom2.Digest, note2.Digest), digests(on), "toggle on again: upstream and local: %+v", on)

	// --- the upstream stops: everything verified before still verifies, from what Berth holds
	up.stop(t)
	require.Equal(t, 2, sc.cosignVerify(psubj), "cosign verify (bundle), upstream stopped")
	require.Equal(t, 1, sc.cosignVerify(psubj, "--new-bundle-format=false"), "cosign verify (legacy), upstream stopped")
	sc.must("notation", "verify", "--insecure-registry", psubj)
	all = sc.discover(psubj, "")
	require.Equal(t, sortedStrings(typeCosignBundle, typeCosignBundle, typeNotation, typeSBOM, typeSig), artifactTypes(all),
		"referrers with the upstream stopped: %+v", all)
	res = checkReferrersAPI(t, proxy, projRepo, dig, "", 5)
	require.Equal(t, "STALE", res.Header.Get("X-Cache"), "upstream down, freshness 0: the cached answer is stale\n%s", res)
	// Nothing cached, a local referrer held: that one, marked LOCAL. Nothing at all: 503 naming the upstream.
	res = checkReferrersAPI(t, proxy, projRepo, dig3, "", 1)
	require.Equal(t, "LOCAL", res.Header.Get("X-Cache"), "upstream down, nothing cached, a local referrer:\n%s", res)
	require.Contains(t, string(res.Body), note3.Digest)
	res = proxy.do(t, http.MethodGet, "/v2/"+projRepo+"/referrers/"+sha256Digest([]byte("never asked")), nil, nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, res.Status, "upstream down, nothing cached or local:\n%s", res)
	var oe struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &oe), "an OCI error body:\n%s", res)
	require.NotEmpty(t, oe.Errors, "an OCI error body:\n%s", res)
	require.Contains(t, strings.ToLower(oe.Errors[0].Message), "upstream", "the error names the upstream failure:\n%s", res)
}

// TestProxyReferrersPagination: a subject with 250 referrers (249 pushed over HTTP, one cosign bundle) on a
// Berth upstream that pages at 10. Through the proxy all 250 are listed (oras discover), cosign (which
// reads one page) verifies, and raw GETs with n=50 come in pages of exactly 50 whose Link points at the
// proxy's own host and path, never the upstream, and whose union is the 250; filtered likewise.
func TestProxyReferrersPagination(t *testing.T) {
	t.Parallel()
	toolsDir(t, "oras", "crane", "cosign")
	up := berthUpstream(t)
	p := pusher{t: t, base: up.URL, auth: up.Auth}
	empty := p.blob(upstreamRepo, ocispec.MediaTypeEmptyJSON, emptyJSON)
	require.Equal(t, ocispec.DescriptorEmptyJSON.Digest, empty.Digest)
	layer := p.blob(upstreamRepo, "text/plain", []byte("the subject\n"))
	layer.MediaType = ocispec.MediaTypeImageLayer
	subject := p.manifest(upstreamRepo, "v1", ocispec.MediaTypeImageManifest,
		artifactManifest(t, typeApp, []ocispec.Descriptor{layer}, nil, nil))
	const total, sigEvery = 250, 5
	pushed := map[string]bool{}
	sigs := map[string]bool{}
	for i := range total - 1 { // the 250th is a cosign signature, below
		typ := typeSBOM
		if i%sigEvery == 0 {
			typ = typeSig
		}
		d := p.manifest(upstreamRepo, "", ocispec.MediaTypeImageManifest,
			artifactManifest(t, typ, nil, &subject, map[string]string{"org.berth.e2e.index": strconv.Itoa(i)}))
		pushed[d.Digest.String()] = true
		if typ == typeSig {
			sigs[d.Digest.String()] = true
		}
	}
	// cosign reads only the first referrers page: through the proxy it must find its bundle among 250.
	uc := up.clients(t, "oras", "crane", "cosign")
	uc.must("cosign", "generate-key-pair")
	uc.must("cosign", cosignSignArgs(up.Host+"/"+upstreamRepo+"@"+subject.Digest.String())...)
	bundles := uc.discover(up.Host+"/"+upstreamRepo+"@"+subject.Digest.String(), typeCosignBundle)
	require.Len(t, bundles, 1, "the cosign bundle upstream: %+v", bundles)
	pushed[bundles[0].Digest] = true
	require.Len(t, pushed, total)

	// The upstream really paginates at 10, whatever n asks.
	upPath := "/v2/" + upstreamRepo + "/referrers/" + subject.Digest.String()
	first := getReferrers(t, up.berth, upPath+"?n=50")
	require.Len(t, first.index.Manifests, 10, "upstream page:\n%s", first.res)
	require.NotNil(t, first.next, "upstream page without Link:\n%s", first.res)

	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "paginating-berth", up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id)
	projRepo := "cache/" + upstreamRepo

	c := newClients(t, proxy, "oras", "cosign")
	c.writeFile("cosign.pub", uc.readFile("cosign.pub"))
	require.Equal(t, 1, c.cosignVerify(proxy.Host+"/"+projRepo+"@"+subject.Digest.String()), "cosign verify through the proxy")
	refs := c.discover(proxy.Host+"/"+projRepo+"@"+subject.Digest.String(), "")
	require.Len(t, refs, total, "oras discover through the proxy")
	got := map[string]bool{}
	for _, r := range refs {
		got[r.Digest] = true
	}
	require.Equal(t, pushed, got, "oras discover lists every upstream referrer once")

	walk := func(n int, artifactType string) (pages []int, union map[string]bool) {
		t.Helper()
		q := url.Values{"n": {strconv.Itoa(n)}}
		if artifactType != "" {
			q.Set("artifactType", artifactType)
		}
		next := "/v2/" + projRepo + "/referrers/" + subject.Digest.String() + "?" + q.Encode()
		union = map[string]bool{}
		for next != "" {
			require.Less(t, len(pages), 2*total/n+2, "too many pages")
			pg := getReferrers(t, proxy, next)
			if artifactType != "" {
				require.Equal(t, "artifactType", pg.res.Header.Get("OCI-Filters-Applied"), "%s", pg.res)
			}
			for _, d := range pg.index.Manifests {
				require.False(t, union[d.Digest.String()], "%s listed twice across pages (page %d):\n%s", d.Digest, len(pages), pg.res)
				union[d.Digest.String()] = true
				if artifactType != "" {
					require.Equal(t, artifactType, d.ArtifactType)
				}
			}
			pages = append(pages, len(pg.index.Manifests))
			next = ""
			if pg.next != nil {
				require.Equal(t, proxy.Host, pg.next.Host, "Link must point at the proxy itself:\n%s", pg.res)
				require.NotContains(t, pg.res.Header.Get("Link"), up.Host, "Link names the upstream:\n%s", pg.res)
				require.True(t, strings.HasPrefix(pg.next.Path, "/v2/"+projRepo+"/referrers/"), "Link path:\n%s", pg.res)
				require.Equal(t, strconv.Itoa(n), pg.next.Query().Get("n"), "Link keeps n:\n%s", pg.res)
				next = pg.next.RequestURI()
			}
		}
		return pages, union
	}
	pages, union := walk(50, "")
	require.Equal(t, []int{50, 50, 50, 50, 50}, pages, "pages of n=50")
	require.Equal(t, pushed, union, "the pages' union is every referrer")

	pages, union = walk(20, typeSig)
	require.Equal(t, []int{20, 20, 10}, pages, "filtered pages of n=20")
	require.Equal(t, sigs, union, "the filtered pages' union is every signature")

	all := getReferrers(t, proxy, "/v2/"+projRepo+"/referrers/"+subject.Digest.String())
	require.Len(t, all.index.Manifests, total, "the default page holds them all:\n%s", all.res)
	require.Nil(t, all.next, "no Link after the last page:\n%s", all.res)
	for _, d := range all.index.Manifests {
		require.Equal(t, digest.Canonical, d.Digest.Algorithm())
		if d.ArtifactType != typeCosignBundle {
			require.NotEmpty(t, d.Annotations["org.berth.e2e.index"], "annotations kept: %+v", d)
		}
	}
}

// TestProxyReferrersPrefetch: pulling only the subject through the proxy (toggle on) makes Berth fetch
// its referrers in the background — list, manifests and blobs — so that with the upstream stopped
// afterwards, cosign verify (bundle) and notation verify pass although no client ever asked for the
// signatures before. On a tag-schema upstream (distribution) and a referrers-API one (ggcr).
func TestProxyReferrersPrefetch(t *testing.T) {
	t.Parallel()
	tools := []string{"oras", "crane", "cosign", "notation"}
	toolsDir(t, tools...)
	cases := []struct {
		name  string
		start func(t *testing.T) *upstream
	}{
		{"distribution", func(t *testing.T) *upstream { return distributionUpstream(t) }},
		{"ggcr", func(t *testing.T) *upstream { return ggcrUpstream(t) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := tc.start(t)
			sc := up.clients(t, tools...)
			repo := up.Host + "/" + upstreamRepo
			dig := sc.pushImage(repo+":v1", "prefetched on "+up.Name+"\n")
			sc.must("cosign", "generate-key-pair")
			sc.must("cosign", cosignSignArgs(repo+"@"+dig)...)
			sc.setUpNotation()
			sc.must("notation", "sign", "--insecure-registry", repo+"@"+dig)

			proxy := startServer(t, serverConfig{})
			id := proxy.createRegistry(t, "upstream-"+up.Name, up.URL, up.Auth)
			proxy.createProxyProject(t, "cache", id)
			psubj := proxy.Host + "/cache/" + upstreamRepo + "@" + dig
			before := proxy.metric(t, `berth_referrers_prefetch_total{outcome="ok"}`)
			sc.must("crane", "manifest", psubj) // the only pull before the outage
			proxy.waitMetricAbove(t, `berth_referrers_prefetch_total{outcome="ok"}`, before)

			up.stop(t)
			require.Equal(t, 1, sc.cosignVerify(psubj), "cosign verify from prefetched referrers")
			sc.must("notation", "verify", "--insecure-registry", psubj)
			refs := sc.discover(psubj, "")
			require.Equal(t, sortedStrings(typeCosignBundle, typeNotation), artifactTypes(refs), "referrers from the prefetched list: %+v", refs)
		})
	}
}
