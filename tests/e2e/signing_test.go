package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	typeCosignBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	typeNotation     = "application/vnd.cncf.notary.signature"
)

// pushImage appends a small layer onto an OCI empty base with crane and returns the image's digest.
func (c *clients) pushImage(ref, content string) string {
	c.t.Helper()
	c.writeFile("image-layer.tar", tarLayer(c.t, map[string][]byte{"app/content.txt": []byte(content)}))
	out := strings.TrimSpace(c.must("crane", "append", "--oci-empty-base", "-f", "image-layer.tar", "-t", ref))
	d := out[strings.LastIndex(out, "@")+1:]
	require.True(c.t, strings.HasPrefix(d, "sha256:"), "crane append printed %q", out)
	return d
}

// TestCosignReferrers signs by digest with cosign v3 (default bundle format, offline key) and verifies;
// the bundle must be stored and found as an OCI 1.1 referrer, without the sha256-<hex> tag fallback.
func TestCosignReferrers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "signed", true)
	c := newClients(t, srv, "oras", "crane", "cosign")
	c.loginOras()
	c.loginCrane()
	repo := srv.Host + "/signed/app"
	dig := c.pushImage(repo+":v1", "signed by cosign\n")
	subject := repo + "@" + dig

	c.must("cosign", "generate-key-pair")
	c.must("cosign", "sign", "--key", "cosign.key", "--allow-http-registry",
		"--use-signing-config=false", "--tlog-upload=false", "-y", subject)
	out := c.must("cosign", "verify", "--key", "cosign.pub", "--allow-http-registry",
		"--insecure-ignore-tlog=true", "--output", "json", subject)
	var verified []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(out), &verified), "cosign verify output:\n%s", out)
	require.Len(t, verified, 1, "cosign verify should report exactly one verified signature:\n%s", out)

	// A different key must not verify: the check is real.
	other := filepath.Join(c.work, "other")
	require.NoError(t, os.MkdirAll(other, 0o700))
	c.must("cosign", "generate-key-pair", "--output-key-prefix", filepath.Join("other", "cosign"))
	r := c.mustFail("cosign", "verify", "--key", filepath.Join("other", "cosign.pub"), "--allow-http-registry",
		"--insecure-ignore-tlog=true", subject)
	require.NotContains(t, r.Stdout, "critical", "a foreign key verified:\n%s", r)

	bundles := c.discover(subject, typeCosignBundle)
	require.Len(t, bundles, 1, "cosign bundle referrers: %+v", bundles)
	require.Equal(t, typeCosignBundle, bundles[0].ArtifactType)
	all := c.discover(subject, "")
	require.Len(t, all, 1, "all referrers: %+v", all)
	checkReferrersAPI(t, srv, "signed/app", dig, typeCosignBundle, 1)

	tags := c.tags(repo)
	requireNoFallbackTags(t, tags)
	require.Equal(t, []string{"v1"}, tags, "cosign must not add tags (.sig/.att or the referrers tag)")
}

// notationTrustPolicy trusts the "test" CA store created by `notation cert generate-test` for every registry.
const notationTrustPolicy = `{
  "version": "1.0",
  "trustPolicies": [{
    "name": "berth-e2e",
    "registryScopes": ["*"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:test"],
    "trustedIdentities": ["*"]
  }]
}`

// TestNotationReferrers signs with notation v1.3.2 through the referrers API (--force-referrers-tag=false)
// and verifies: the signature is a referrer, and no sha256-<hex> tag appears. A second image is signed in
// notation's default mode, which also writes the referrers tag-schema index: it must verify too.
func TestNotationReferrers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "notary", true)
	c := newClients(t, srv, "oras", "crane", "notation")
	c.loginOras()
	c.loginCrane()
	c.loginNotation()
	c.must("notation", "cert", "generate-test", "--default", "test")
	c.writeFile("trustpolicy.json", []byte(notationTrustPolicy))
	c.must("notation", "policy", "import", "--force", "trustpolicy.json")

	repo := srv.Host + "/notary/app"
	dig := c.pushImage(repo+":v1", "signed by notation\n")
	subject := repo + "@" + dig

	c.must("notation", "sign", "--insecure-registry", "--force-referrers-tag=false", subject)
	c.must("notation", "verify", "--insecure-registry", subject)
	list := c.must("notation", "list", "--insecure-registry", subject)
	require.Contains(t, list, typeNotation, "notation list:\n%s", list)

	sigs := c.discover(subject, typeNotation)
	require.Len(t, sigs, 1, "notation signature referrers: %+v", sigs)
	require.Equal(t, typeNotation, sigs[0].ArtifactType)
	require.Len(t, c.discover(subject, ""), 1)
	checkReferrersAPI(t, srv, "notary/app", dig, typeNotation, 1)

	tags := c.tags(repo)
	requireNoFallbackTags(t, tags)
	require.Equal(t, []string{"v1"}, tags)

	// Default mode (--force-referrers-tag): the tag schema on top; the referrers API still lists it.
	tagRepo := srv.Host + "/notary/tagschema"
	dig2 := c.pushImage(tagRepo+":v1", "signed by notation, tag schema\n")
	subject2 := tagRepo + "@" + dig2
	c.must("notation", "sign", "--insecure-registry", subject2)
	c.must("notation", "verify", "--insecure-registry", subject2)
	require.Equal(t, sortedStrings(fallbackTag(dig2), "v1"), c.tags(tagRepo))
	require.Len(t, c.discover(subject2, typeNotation), 1)

	// Unsigned image: verification must fail.
	dig3 := c.pushImage(repo+":unsigned", "never signed\n")
	c.mustFail("notation", "verify", "--insecure-registry", repo+"@"+dig3)
}
