package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

const (
	typeApp  = "application/vnd.berth.e2e.app.v1"
	typeSBOM = "application/vnd.berth.e2e.sbom.v1+json"
	typeSig  = "application/vnd.berth.e2e.signature.v1"
)

// TestRegistryCore pushes, pulls, lists, attaches, discovers and deletes with oras and crane against a
// public project, checking bytes, digests and exact referrer counts.
func TestRegistryCore(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "core", true)
	c := newClients(t, srv, "oras", "crane")
	c.loginOras()
	c.loginCrane()
	repo := srv.Host + "/core/app"

	// --- oras push, stable digest, pull back
	payload := []byte("hello from berth e2e\n" + strings.Repeat("0123456789abcdef", 4096))
	c.writeFile("hello.txt", payload)
	pushed := c.orasPush(repo+":v1", typeApp, "hello.txt:text/plain")
	again := c.orasPush(repo+":v1-again", typeApp, "hello.txt:text/plain")
	require.Equal(t, pushed.Digest, again.Digest, "same files and annotations must give the same manifest digest")
	subject := repo + "@" + pushed.Digest

	manifest := c.must("oras", "manifest", "fetch", "--plain-http", repo+":v1")
	require.Equal(t, pushed.Digest, sha256Digest([]byte(manifest)), "manifest bytes served differ from those pushed:\n%s", manifest)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal([]byte(manifest), &m), manifest)
	require.Equal(t, typeApp, m.ArtifactType)
	require.Equal(t, fixedCreated, m.Annotations[ocispec.AnnotationCreated])
	require.Len(t, m.Layers, 1)

	c.must("oras", "pull", "--plain-http", "-o", "pulled", repo+":v1")
	require.Equal(t, payload, c.readFile(filepath.Join("pulled", "hello.txt")), "pulled bytes differ")

	// --- two referrers with different artifact types
	c.writeFile("sbom.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}`))
	c.writeFile("sig.txt", []byte("not really a signature\n"))
	sbom := c.orasAttach(subject, typeSBOM, "sbom.json:application/json")
	sig := c.orasAttach(subject, typeSig, "sig.txt:text/plain")

	all := c.discover(subject, "")
	require.Len(t, all, 2, "oras discover %s: %+v", subject, all)
	require.Equal(t, sortedStrings(typeSBOM, typeSig), artifactTypes(all))
	require.Equal(t, sortedStrings(sbom.Digest, sig.Digest), digests(all))

	onlySBOM := c.discover(subject, typeSBOM)
	require.Len(t, onlySBOM, 1, "oras discover --artifact-type %s: %+v", typeSBOM, onlySBOM)
	require.Equal(t, sbom.Digest, onlySBOM[0].Digest)
	require.Equal(t, typeSBOM, onlySBOM[0].ArtifactType)
	require.Empty(t, c.discover(subject, "application/vnd.berth.e2e.absent"), "filter on an absent type")

	// The same through the API itself: 200, an OCI index, and filtering consistent with OCI-Filters-Applied.
	checkReferrersAPI(t, srv, "core/app", pushed.Digest, "", 2)
	checkReferrersAPI(t, srv, "core/app", pushed.Digest, typeSBOM, 1)
	checkReferrersAPI(t, srv, "core/app", sha256Digest([]byte("no such manifest")), "", 0)

	// oras found them through the referrers API, not the tag schema.
	require.Equal(t, sortedStrings("v1", "v1-again"), c.tags(repo))

	// --- crane: append a layer onto an OCI empty base, read it back
	layer := tarLayer(t, map[string][]byte{"berth/hello.txt": payload, "berth/version": []byte("1\n")})
	c.writeFile("layer.tar", layer)
	out := strings.TrimSpace(c.must("crane", "append", "--oci-empty-base", "-f", "layer.tar", "-t", repo+":crane"))
	craneDigest := out[strings.LastIndex(out, "@")+1:]
	require.True(t, strings.HasPrefix(craneDigest, "sha256:"), "crane append printed %q", out)

	craneManifest := c.must("crane", "manifest", repo+":crane")
	require.Equal(t, craneDigest, sha256Digest([]byte(craneManifest)), "manifest bytes differ from those pushed")
	var cm ocispec.Manifest
	require.NoError(t, json.Unmarshal([]byte(craneManifest), &cm), craneManifest)
	require.Equal(t, ocispec.MediaTypeImageManifest, cm.MediaType)
	require.Len(t, cm.Layers, 1)
	require.Equal(t, craneDigest, strings.TrimSpace(c.must("crane", "digest", repo+":crane")))
	require.Equal(t, pushed.Digest, strings.TrimSpace(c.must("crane", "digest", repo+":v1")))

	c.must("crane", "export", repo+":crane", "exported.tar")
	files := untar(t, c.readFile("exported.tar"))
	require.Equal(t, payload, files["berth/hello.txt"], "exported file differs")
	require.Equal(t, []byte("1\n"), files["berth/version"])

	// the layer blob itself, byte for byte
	blob := c.must("crane", "blob", repo+"@"+cm.Layers[0].Digest.String())
	require.Equal(t, cm.Layers[0].Digest.String(), sha256Digest([]byte(blob)), "blob bytes differ from the digest")
	require.Equal(t, sortedStrings("crane", "v1", "v1-again"), c.tags(repo))

	// --- delete: a manifest by digest (its tag goes with it), then one referrer
	c.must("crane", "delete", repo+"@"+craneDigest)
	r := c.mustFail("crane", "manifest", repo+"@"+craneDigest)
	require.Contains(t, r.Stderr+r.Stdout, "MANIFEST_UNKNOWN", "deleted manifest:\n%s", r)
	require.Equal(t, sortedStrings("v1", "v1-again"), c.tags(repo), "the tag of a deleted manifest must go")

	c.must("oras", "manifest", "delete", "--plain-http", "--force", repo+"@"+sbom.Digest)
	left := c.discover(subject, "")
	require.Len(t, left, 1, "after deleting the SBOM referrer: %+v", left)
	require.Equal(t, sig.Digest, left[0].Digest)
	checkReferrersAPI(t, srv, "core/app", pushed.Digest, "", 1)
}

// checkReferrersAPI calls GET /v2/<repo>/referrers/<digest> of Berth anonymously (public project) and
// checks the status, the content type, and the number of entries. Berth filters by artifactType itself:
// a filtered request must be answered OCI-Filters-Applied: artifactType with only matching entries, an
// unfiltered one without the header (distribution-spec, "Listing Referrers"). It returns the exchange.
func checkReferrersAPI(t *testing.T, srv *server, repo, digest, artifactType string, want int) httpResult {
	t.Helper()
	path := "/v2/" + repo + "/referrers/" + digest
	if artifactType != "" {
		path += "?artifactType=" + url.QueryEscape(artifactType)
	}
	res := srv.do(t, http.MethodGet, path, nil, nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "referrers API:\n%s", res)
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), ocispec.MediaTypeImageIndex),
		"referrers API content type:\n%s", res)
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(res.Body, &idx), "referrers API body:\n%s", res)
	require.Equal(t, ocispec.MediaTypeImageIndex, idx.MediaType, "referrers index mediaType:\n%s", res)
	require.NotNil(t, idx.Manifests, "referrers index must have a manifests array (possibly empty):\n%s", res)
	got := idx.Manifests
	if artifactType == "" {
		require.Empty(t, res.Header.Get("OCI-Filters-Applied"), "no filter asked, none announced:\n%s", res)
	} else {
		require.Equal(t, "artifactType", res.Header.Get("OCI-Filters-Applied"), "Berth applies the artifactType filter and says so:\n%s", res)
		for _, d := range got {
			require.Equal(t, artifactType, d.ArtifactType, "server said it filtered, but:\n%s", res)
		}
	}
	require.Len(t, got, want, "referrers API entries:\n%s", res)
	for _, d := range got {
		require.NotEmpty(t, d.ArtifactType, "referrer entry without artifactType:\n%s", res)
		require.Positive(t, d.Size, "referrer entry without size:\n%s", res)
	}
	return res
}

func sortedStrings(s ...string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// tarLayer builds an uncompressed tar with fixed metadata, so its digest is stable.
func tarLayer(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seenDirs := map[string]bool{}
	for _, n := range names {
		if dir := filepath.Dir(n); dir != "." && !seenDirs[dir] {
			seenDirs[dir] = true
			require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime}))
		}
		require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime}))
		_, err := tw.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// untar returns the regular files of a tar by name.
func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[strings.TrimPrefix(h.Name, "./")] = data
	}
}
