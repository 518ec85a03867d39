package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProxyNotationSignLocally signs a proxied image with notation's default settings against the
// proxy-cache project: notation pushes its signature by digest and, by default, the referrers tag-schema
// index (sha256-<hex>) beside it. Both pushes are accepted; notation verify through the proxy passes and
// the signature is listed beside the upstream's SBOM. An ordinary tag push is still DENIED.
func TestProxyNotationSignLocally(t *testing.T) {
	t.Parallel()
	tools := []string{"oras", "crane", "notation"}
	toolsDir(t, tools...)
	up := ggcrUpstream(t)
	uc := up.clients(t, tools...)
	repo := up.Host + "/" + upstreamRepo
	dig := uc.pushImage(repo+":v1", "notation signs locally\n")
	uc.writeFile("sbom.json", []byte(`{"components":[]}`))
	uc.orasAttach(repo+"@"+dig, typeSBOM, "sbom.json:application/json")

	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream-ggcr", up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id)
	pc := newClients(t, proxy, tools...)
	pc.loginOras()
	pc.loginNotation()
	psubj := proxy.Host + "/cache/" + upstreamRepo + "@" + dig
	pc.setUpNotation()
	pc.must("notation", "sign", "--insecure-registry", psubj)
	pc.must("notation", "verify", "--insecure-registry", psubj)
	refs := pc.discover(psubj, "")
	require.Equal(t, sortedStrings(typeNotation, typeSBOM), artifactTypes(refs), "local notation signature beside the upstream SBOM: %+v", refs)
	require.Len(t, uc.discover(repo+"@"+dig, ""), 1, "the signature stays in the proxy, not upstream")

	pc.writeFile("x.txt", []byte("no pushes here\n"))
	r := pc.mustFail("oras", "push", "--plain-http", proxy.Host+"/cache/"+upstreamRepo+":pushed", "x.txt:text/plain")
	require.Contains(t, strings.ToUpper(r.Stderr), "DENIED", "an ordinary tag push into a proxy-cache project:\n%s", r)
}
