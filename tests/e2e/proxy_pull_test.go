package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// TestProxyPullThrough pulls through a proxy-cache project with real clients, from CNCF distribution
// behind htpasswd Basic auth (credentials given through the registries API) and from go-containerregistry
// (anonymous, and behind a Bearer token service that wants those credentials):
// `crane pull` of an image (every blob byte-exact), `oras pull` of an artifact, `oras copy -r` from the
// proxy into a local project (with the artifact's upstream SBOM referrer), a multi-arch index (by
// platform with crane, whole with oras copy); then, with the upstream stopped, by-tag and by-digest
// pulls are served from what Berth stored.
func TestProxyPullThrough(t *testing.T) {
	t.Parallel()
	toolsDir(t, "oras", "crane")
	cases := []struct {
		name  string
		start func(t *testing.T) *upstream
	}{
		{"distribution-basic-auth", func(t *testing.T) *upstream {
			return distributionUpstream(t, registrytest.WithBasicAuth("puller", "pull-"+randomHex(t, 8)))
		}},
		{"ggcr", func(t *testing.T) *upstream { return ggcrUpstream(t) }},
		{"ggcr-bearer-token", func(t *testing.T) *upstream {
			ta := registrytest.NewTokenAuth(t, "registrytest")
			robot := &basicAuth{"robot", "token-" + randomHex(t, 8)}
			ta.SetCredentials(robot.user, robot.password)
			up := ggcrUpstream(t, registrytest.WithWrapper(ta.Middleware))
			up.Auth = robot // Berth trades them for scoped tokens
			t.Cleanup(func() {
				if !t.Failed() {
					require.Positive(t, ta.Requests(), "Berth must have asked the token service")
				}
			})
			return up
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testProxyPullThrough(t, tc.start(t))
		})
	}
}

// platformImage is one image of a multi-arch index.
type platformImage struct {
	desc  ocispec.Descriptor // with Platform
	body  []byte
	layer []byte
}

func testProxyPullThrough(t *testing.T, up *upstream) {
	reg := up.reg
	if up.Auth != nil {
		res, err := http.Get(up.URL + "/v2/lib/img/manifests/v1")
		require.NoError(t, err)
		_ = res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the upstream must refuse anonymous clients")
	}

	// --- upstream content, pushed in-process: an image, an artifact with an SBOM, a two-platform index
	img := reg.PushImage(t, "lib/img", "v1")

	file := []byte("pulled through " + up.Name + "\n")
	reg.PushBlob(t, "lib/art", emptyJSON)
	fileDesc := reg.PushBlob(t, "lib/art", file)
	fileDesc.MediaType = "text/plain"
	fileDesc.Annotations = map[string]string{ocispec.AnnotationTitle: "hello.txt"}
	artBody := artifactManifest(t, typeApp, []ocispec.Descriptor{fileDesc}, nil, map[string]string{ocispec.AnnotationCreated: fixedCreated})
	art := reg.PushManifest(t, "lib/art", "v1", ocispec.MediaTypeImageManifest, artBody)
	sbom := reg.PushReferrer(t, "lib/art", art, typeSBOM, nil)
	if up.Name == "distribution" { // no referrers API: the referrers tag schema, as a client would write it
		reg.PushTagSchemaIndex(t, "lib/art", art.Digest, sbom)
	}

	var platforms []platformImage
	for _, arch := range []string{"amd64", "arm64"} {
		layer := tarLayer(t, map[string][]byte{"arch.txt": []byte(arch + " on " + up.Name + "\n")})
		ld := reg.PushBlob(t, "lib/multi", layer)
		ld.MediaType = ocispec.MediaTypeImageLayer
		cd := reg.PushBlob(t, "lib/multi", imageConfig(t, arch, ld.Digest))
		cd.MediaType = ocispec.MediaTypeImageConfig
		body := mustMarshal(t, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cd, Layers: []ocispec.Descriptor{ld},
		})
		d := reg.PushManifest(t, "lib/multi", "", ocispec.MediaTypeImageManifest, body)
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		platforms = append(platforms, platformImage{desc: d, body: body, layer: layer})
	}
	indexBody := mustMarshal(t, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{platforms[0].desc, platforms[1].desc},
	})
	index := reg.PushManifest(t, "lib/multi", "v1", ocispec.MediaTypeImageIndex, indexBody)

	// --- the proxy, and a local project to copy into
	proxy := startServer(t, serverConfig{})
	id := proxy.createRegistry(t, "upstream-"+up.Name, up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id)
	proxy.createProject(t, "local", false)
	c := newClients(t, proxy, "oras", "crane")
	c.loginOras()
	c.loginCrane()
	cache := proxy.Host + "/cache/"
	local := proxy.Host + "/local/"

	// crane pull: an OCI layout whose manifest, config and layer are the upstream's bytes
	c.must("crane", "pull", "--format", "oci", cache+"lib/img:v1", "img-oci")
	requireLayoutBlob(t, c, "img-oci", img.Manifest.Digest, img.Body)
	for d, b := range img.Blobs {
		requireLayoutBlob(t, c, "img-oci", d, b)
	}
	require.Equal(t, img.Manifest.Digest.String(), strings.TrimSpace(c.must("crane", "digest", cache+"lib/img:v1")))

	// oras pull of the artifact's file
	c.must("oras", "pull", "--plain-http", "-o", "art-out", cache+"lib/art:v1")
	require.Equal(t, file, c.readFile(filepath.Join("art-out", "hello.txt")))

	// oras copy -r: the artifact and its upstream referrer, from the proxy into the local project
	c.must("oras", "copy", "-r", "--from-plain-http", "--to-plain-http", cache+"lib/art:v1", local+"art:v1")
	require.Equal(t, string(artBody), c.must("crane", "manifest", local+"art:v1"), "copied manifest is byte-exact")
	refs := c.discover(local+"art@"+art.Digest.String(), "")
	require.Len(t, refs, 1, "the SBOM was copied with the artifact: %+v", refs)
	require.Equal(t, sbom.Digest.String(), refs[0].Digest)
	require.Equal(t, typeSBOM, refs[0].ArtifactType)
	c.must("oras", "pull", "--plain-http", "-o", "art-local", local+"art:v1")
	require.Equal(t, file, c.readFile(filepath.Join("art-local", "hello.txt")))

	// multi-arch index: byte-exact, each platform resolvable and pullable, and copyable whole
	require.Equal(t, string(indexBody), c.must("crane", "manifest", cache+"lib/multi:v1"))
	for _, p := range platforms {
		plat := "linux/" + p.desc.Platform.Architecture
		require.Equal(t, p.desc.Digest.String(), strings.TrimSpace(c.must("crane", "digest", "--platform", plat, cache+"lib/multi:v1")), plat)
	}
	arm := platforms[1]
	c.must("crane", "pull", "--platform", "linux/arm64", "--format", "oci", cache+"lib/multi:v1", "arm-oci")
	requireLayoutBlob(t, c, "arm-oci", arm.desc.Digest, arm.body)
	requireLayoutBlob(t, c, "arm-oci", digest.FromBytes(arm.layer), arm.layer)
	c.must("oras", "copy", "--from-plain-http", "--to-plain-http", cache+"lib/multi:v1", local+"multi:v1")
	require.Equal(t, string(indexBody), c.must("crane", "manifest", local+"multi:v1"))
	for _, p := range platforms {
		require.Equal(t, string(p.body), c.must("crane", "manifest", local+"multi@"+p.desc.Digest.String()))
	}

	// the upstream stops: by tag and by digest, what was pulled is served from local storage
	up.stop(t)
	require.Equal(t, string(img.Body), c.must("crane", "manifest", cache+"lib/img:v1"), "by tag, upstream stopped")
	require.Equal(t, string(img.Body), c.must("crane", "manifest", cache+"lib/img@"+img.Manifest.Digest.String()), "by digest, upstream stopped")
	c.must("crane", "pull", "--format", "oci", cache+"lib/img:v1", "img-oci-again")
	requireLayoutBlob(t, c, "img-oci-again", img.Manifest.Digest, img.Body)
	c.must("oras", "pull", "--plain-http", "-o", "art-again", cache+"lib/art:v1")
	require.Equal(t, file, c.readFile(filepath.Join("art-again", "hello.txt")))
	require.Equal(t, index.Digest.String(), strings.TrimSpace(c.must("crane", "digest", cache+"lib/multi:v1")))
	require.Equal(t, arm.desc.Digest.String(), strings.TrimSpace(c.must("crane", "digest", "--platform", "linux/arm64", cache+"lib/multi:v1")))
}

// requireLayoutBlob checks that the OCI layout dir (in the clients' work dir) holds blob d with content want.
func requireLayoutBlob(t *testing.T, c *clients, dir string, d digest.Digest, want []byte) {
	t.Helper()
	p := filepath.Join(c.work, dir, "blobs", d.Algorithm().String(), d.Encoded())
	got, err := os.ReadFile(p)
	require.NoError(t, err, "blob %s in the OCI layout %s", d, dir)
	require.Equal(t, want, got, "blob %s in the OCI layout %s", d, dir)
	require.Equal(t, d, digest.FromBytes(got), "blob %s in the OCI layout %s", d, dir)
}
