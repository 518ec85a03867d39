package e2e

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// discoverTree runs `oras discover` with its default depth (the whole tree: oras asks for the referrers
// of every referrer) and returns every node below the root.
func (c *clients) discoverTree(subject string) []discoverNode {
	c.t.Helper()
	root := decodeJSON[discoverNode](c.t, "oras discover",
		c.must("oras", "discover", "--plain-http", "--format", "json", subject))
	var all []discoverNode
	var walk func(n discoverNode)
	walk = func(n discoverNode) {
		for _, r := range n.Referrers {
			all = append(all, r)
			walk(r)
		}
	}
	walk(root)
	return all
}

// TestProxyReferrersSurviveRestart follows issue 15 on the embedded default (SQLite, no Redis): a proxy
// project whose referrers (a cosign bundle, a notation signature, an SBOM, and a note pushed into the
// proxy with a note of its own) were discovered once; then Berth stops, the upstream stops, and Berth
// starts again on the same data directory. `oras discover` (the whole tree), `cosign verify` and
// `notation verify` pass, answered STALE from the persistent referrers cache; a manifest pushed into the
// proxy afterwards, whose referrers were never asked, answers LOCAL with an empty list, not 503.
func TestProxyReferrersSurviveRestart(t *testing.T) {
	t.Parallel()
	tools := []string{"oras", "crane", "cosign", "notation"}
	toolsDir(t, tools...)
	up := berthUpstream(t)

	sc := up.clients(t, tools...)
	repo := up.Host + "/" + upstreamRepo
	dig := sc.pushImage(repo+":v1", "survives a restart\n")
	subject := repo + "@" + dig
	sc.must("cosign", "generate-key-pair")
	sc.must("cosign", cosignSignArgs(subject)...)
	sc.setUpNotation()
	sc.must("notation", "sign", "--insecure-registry", subject)
	sc.writeFile("sbom.json", []byte(`{"components":["restart"]}`))
	sc.orasAttach(subject, typeSBOM, "sbom.json:application/json")

	// Freshness 0: every request asks the upstream, so after the restart the answers must come from the
	// persistent cache as STALE (not as fresh hits).
	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream", up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id, "proxy_referrer_cache_seconds", "0")
	projRepo := "cache/" + upstreamRepo
	pc := newClients(t, proxy, "oras")
	pc.loginOras()
	pc.writeFile("note.txt", []byte("reviewed locally\n"))
	note := pc.orasAttach(proxy.Host+"/"+projRepo+"@"+dig, typeSig, "note.txt:text/plain")
	pc.orasAttach(proxy.Host+"/"+projRepo+"@"+note.Digest, typeSig, "note.txt:text/plain") // a note on the note

	psubj := proxy.Host + "/" + projRepo + "@" + dig
	before := sc.discoverTree(psubj)
	require.Equal(t, sortedStrings(typeCosignBundle, typeNotation, typeSBOM, typeSig, typeSig), artifactTypes(before),
		"the whole tree through the proxy, upstream up: %+v", before)
	require.Equal(t, 1, sc.cosignVerify(psubj))
	sc.must("notation", "verify", "--insecure-registry", psubj)

	// Pushed into the proxy now, its referrers never asked: nothing is cached for them. (Pushing during
	// the outage is not possible with oras: it first HEADs the new digest, which Berth cannot answer
	// without the upstream.)
	pc.writeFile("late.txt", []byte("approved last\n"))
	late := pc.orasAttach(psubj, typeSig, "late.txt:text/plain")

	proxy.stop(t)
	up.stop(t)
	proxy.start(t) // same data directory, a new port
	psubj = proxy.Host + "/" + projRepo + "@" + dig

	after := sc.discoverTree(psubj)
	require.Equal(t, sortedStrings(append(digests(before), late.Digest)...), sortedStrings(digests(after)...),
		"the same tree after the restart, upstream down, with the late note: %+v", after)
	require.Equal(t, 1, sc.cosignVerify(psubj), "cosign verify after the restart, upstream down")
	sc.must("notation", "verify", "--insecure-registry", psubj)
	res := checkReferrersAPI(t, proxy, projRepo, dig, "", 5)
	require.Equal(t, "STALE", res.Header.Get("X-Cache"), "the subject's referrers come from the persistent cache:\n%s", res)
	for _, n := range after {
		if n.Digest == late.Digest {
			continue
		}
		res := proxy.do(t, http.MethodGet, "/v2/"+projRepo+"/referrers/"+n.Digest, nil, nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "referrers of %s (%s):\n%s", n.Digest, n.ArtifactType, res)
		require.Equal(t, "STALE", res.Header.Get("X-Cache"), "referrers of %s (%s):\n%s", n.Digest, n.ArtifactType, res)
	}

	// The late note never existed upstream and nothing is cached for its referrers: they are the local
	// ones, none. LOCAL and an empty index (which let oras discover walk past it above), not 503.
	res = checkReferrersAPI(t, proxy, projRepo, late.Digest, "", 0)
	require.Equal(t, "LOCAL", res.Header.Get("X-Cache"), "a manifest pushed into the proxy, upstream down:\n%s", res)
}
