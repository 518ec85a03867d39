package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// A manifest by digest is fetched once, stored byte for byte, and then served without the upstream.
func TestManifestByDigest(t *testing.T) {
	for _, kind := range []upstreamKind{distribution, ggcr} {
		t.Run(kind.String(), func(t *testing.T) {
			e, up, img := newImageEnv(t, kind, "lib/app", "")
			ref := "lib/app/manifests/" + img.Manifest.Digest.String()

			r := e.get(ref)
			requireOK(t, r, img.Body)
			require.Equal(t, img.Manifest.Digest.String(), r.header.Get("Docker-Content-Digest"))
			require.Equal(t, ocispec.MediaTypeImageManifest, r.header.Get("Content-Type"))
			require.Equal(t, 1, up.hits.count(http.MethodGet, "manifests"))
			require.Zero(t, up.hits.count(http.MethodHead, "manifests"), "a digest needs no HEAD")
			e.requireStored(img.Manifest.Digest, img.Body)

			up.Close()
			r = e.get(ref)
			requireOK(t, r, img.Body)
			require.Empty(t, r.header.Get("X-Cache"), "a manifest by digest is never stale")
			r = e.do(http.MethodHead, ref, "", nil)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, img.Manifest.Digest.String(), r.header.Get("Docker-Content-Digest"))
			m, err := e.svc.GetManifest(t.Context(), e.repo("lib/app"), img.Manifest.Digest.String())
			require.NoError(t, err)
			require.False(t, m.Stale)
		})
	}
}

// A manifest by tag costs exactly one upstream HEAD per pull; the GET happens only when the digest the
// HEAD names is not held. Upstream failures other than 404 fall back to the local copy.
func TestManifestByTag(t *testing.T) {
	for _, kind := range []upstreamKind{distribution, ggcr} {
		t.Run(kind.String(), func(t *testing.T) { testManifestByTag(t, kind) })
	}
}

func testManifestByTag(t *testing.T, kind upstreamKind) {
	up := newUpstream(t, kind)
	a := up.PushImage(t, "app", "v1")
	up.PushImage(t, "app", "v2")
	e := newEnv(t, up)
	var b registrytest.Image

	steps := []tagStep{
		{name: "cold pull: HEAD, then GET by digest", ref: "v1", want: &a, heads: 1, gets: 1},
		{name: "unchanged: served locally", ref: "v1", want: &a, heads: 1},
		{name: "client HEAD: one upstream HEAD", method: http.MethodHead, ref: "v1", want: &a, heads: 1},
		{name: "tag moved upstream: new manifest fetched, local tag follows",
			before: func() { b = up.PushImage(t, "app", "v1") }, ref: "v1", want: &b, heads: 1, gets: 1},
		{name: "tag moved back to a held manifest: no GET, local tag follows",
			before: func() { up.PushManifest(t, "app", "v1", ocispec.MediaTypeImageManifest, a.Body) },
			ref:    "v1", want: &a, heads: 1},
		{name: "upstream 429: local copy, stale",
			before: func() { up.faults.set(failWith(http.MethodHead, "manifests", http.StatusTooManyRequests)) },
			ref:    "v1", want: &a, stale: true, heads: 1},
		{name: "upstream 429, tag never pulled: TOOMANYREQUESTS", ref: "v2",
			status: http.StatusTooManyRequests, code: "TOOMANYREQUESTS", heads: 1},
		{name: "upstream 500: local copy, stale",
			before: func() { up.faults.set(failWith(http.MethodHead, "manifests", http.StatusInternalServerError)) },
			ref:    "v1", want: &a, stale: true, heads: 1},
		{name: "tag moved but the GET is rate-limited: local copy, stale, tag kept",
			before: func() {
				up.faults.set(failWith(http.MethodGet, "manifests", http.StatusTooManyRequests))
				up.PushImage(t, "app", "v1")
			},
			ref: "v1", want: &a, stale: true, heads: 1, gets: 1},
		{name: "upstream 404: MANIFEST_UNKNOWN", before: func() { up.faults.set(nil) }, ref: "gone",
			status: http.StatusNotFound, code: "MANIFEST_UNKNOWN", heads: 1},
		{name: "upstream 404 for a tag held locally: MANIFEST_UNKNOWN",
			before: func() { up.faults.set(failWith(http.MethodHead, "manifests", http.StatusNotFound)) },
			ref:    "v1", status: http.StatusNotFound, code: "MANIFEST_UNKNOWN", heads: 1, tag: &a},
		{name: "upstream stopped: local copy, stale", before: func() { up.faults.set(nil); up.Close() },
			ref: "v1", want: &a, stale: true},
		{name: "upstream stopped, tag never pulled: UPSTREAM_UNAVAILABLE", ref: "v2",
			status: http.StatusServiceUnavailable, code: "UPSTREAM_UNAVAILABLE"},
	}
	for _, s := range steps {
		e.checkTagStep(t, up, s)
	}
	// Every manifest fetched is held byte for byte, the superseded one included.
	e.requireStored(a.Manifest.Digest, a.Body)
	e.requireStored(b.Manifest.Digest, b.Body)
}

// tagStep is one step of a pull by tag through the proxy: what changes first, the request, and what the
// client, the upstream and the local tag see.
type tagStep struct {
	name   string
	before func()
	method string // GET unless set
	ref    string
	status int    // 200 unless set
	code   string // error code when status != 200
	want   *registrytest.Image
	stale  bool
	heads  int                 // upstream manifest HEADs the step makes
	gets   int                 // upstream manifest GETs the step makes
	tag    *registrytest.Image // where the local tag points afterwards (want when nil)
}

// checkTagStep runs s against e's repository "app" of up.
func (e *env) checkTagStep(t *testing.T, up *upServer, s tagStep) {
	t.Helper()
	if s.before != nil {
		s.before()
	}
	heads, gets := up.hits.count(http.MethodHead, "manifests"), up.hits.count(http.MethodGet, "manifests")
	method := s.method
	if method == "" {
		method = http.MethodGet
	}
	r := e.do(method, "app/manifests/"+s.ref, "", nil)
	require.Equal(t, s.heads, up.hits.count(http.MethodHead, "manifests")-heads, "%s: upstream HEADs", s.name)
	require.Equal(t, s.gets, up.hits.count(http.MethodGet, "manifests")-gets, "%s: upstream GETs", s.name)
	if s.status != 0 {
		require.Equal(t, s.status, r.status, "%s: %s", s.name, r.body)
		if method == http.MethodGet {
			requireCode(t, r, s.status, s.code)
		}
	} else {
		want := s.want.Body
		if method == http.MethodHead {
			want = []byte{}
		}
		requireOK(t, r, want)
		require.Equal(t, s.want.Manifest.Digest.String(), r.header.Get("Docker-Content-Digest"), s.name)
		if s.stale {
			require.Equal(t, content.CacheStale, r.header.Get("X-Cache"), s.name)
			m, err := e.svc.GetManifest(t.Context(), e.repo("app"), s.ref)
			require.NoError(t, err, s.name)
			require.True(t, m.Stale, s.name)
			require.Equal(t, s.want.Manifest.Digest, m.Digest, s.name)
		} else {
			require.Empty(t, r.header.Get("X-Cache"), s.name)
		}
	}
	tag := s.tag
	if tag == nil {
		tag = s.want
	}
	if tag != nil {
		m, err := e.local.GetManifest(t.Context(), e.repo("app"), s.ref)
		require.NoError(t, err, s.name)
		require.Equal(t, tag.Manifest.Digest, m.Digest, "%s: local tag", s.name)
	}
}

// A multi-arch index is pulled by tag and every child by digest; afterwards all of it is served with
// the upstream stopped.
func TestManifestIndex(t *testing.T) {
	up := newUpstream(t, distribution)
	children := []registrytest.Image{up.PushImage(t, "multi", ""), up.PushImage(t, "multi", "")}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for i, c := range children {
		d := c.Manifest
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: []string{"amd64", "arm64"}[i]}
		idx.Manifests = append(idx.Manifests, d)
	}
	body, err := json.Marshal(idx)
	require.NoError(t, err)
	index := up.PushManifest(t, "multi", "latest", ocispec.MediaTypeImageIndex, body)
	e := newEnv(t, up)

	pull := func(stale bool) {
		t.Helper()
		r := e.get("multi/manifests/latest")
		requireOK(t, r, body)
		require.Equal(t, ocispec.MediaTypeImageIndex, r.header.Get("Content-Type"))
		require.Equal(t, index.Digest.String(), r.header.Get("Docker-Content-Digest"))
		require.Equal(t, stale, r.header.Get("X-Cache") == content.CacheStale)
		var got ocispec.Index
		require.NoError(t, json.Unmarshal(r.body, &got))
		require.Len(t, got.Manifests, len(children))
		for i, d := range got.Manifests {
			r := e.get("multi/manifests/" + d.Digest.String())
			requireOK(t, r, children[i].Body)
			require.Equal(t, d.MediaType, r.header.Get("Content-Type"))
			require.Empty(t, r.header.Get("X-Cache"))
			for bd, data := range children[i].Blobs {
				requireOK(t, e.get("multi/blobs/"+bd.String()), data)
			}
		}
	}
	pull(false)
	require.Equal(t, 1, up.hits.count(http.MethodHead, "manifests"))
	require.Equal(t, 1+len(children), up.hits.count(http.MethodGet, "manifests"))
	require.Equal(t, 2*len(children), up.hits.count(http.MethodGet, "blobs"))
	e.requireStored(index.Digest, body)

	up.Close()
	pull(true)
}

// A docker-hub registry maps a one-segment repository to library/<name> upstream; longer names pass.
func TestDockerHubLibrary(t *testing.T) {
	up := newUpstream(t, distribution)
	alpine := up.PushImage(t, "library/alpine", "3.20")
	tool := up.PushImage(t, "org/tool", "1")
	e := newEnv(t, up, registryRow{Type: upstream.TypeDockerHub})

	requireOK(t, e.get("alpine/manifests/3.20"), alpine.Body)
	require.Equal(t, 1, up.hits.path(http.MethodHead, "/v2/library/alpine/manifests/3.20"))
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/library/alpine/manifests/"+alpine.Manifest.Digest.String()))
	layer := alpine.Layers[0].Digest
	requireOK(t, e.get("alpine/blobs/"+layer.String()), alpine.Blobs[layer])
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/library/alpine/blobs/"+layer.String()))
	r := e.get("alpine/tags/list")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.JSONEq(t, `{"name":"cache/alpine","tags":["3.20"]}`, string(r.body))
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/library/alpine/tags/list"))

	// Held locally under the project's name, not the upstream's.
	m, err := e.local.GetManifest(t.Context(), e.repo("alpine"), "3.20")
	require.NoError(t, err)
	require.Equal(t, alpine.Manifest.Digest, m.Digest)

	requireOK(t, e.get("org/tool/manifests/1"), tool.Body)
	require.Equal(t, 1, up.hits.path(http.MethodHead, "/v2/org/tool/manifests/1"))
}

// Pulls through upstreams that demand Basic credentials or Bearer tokens, with the credentials of the
// registry row (sealed in meta, opened by proxy.Clients).
func TestUpstreamAuth(t *testing.T) {
	const user, pass = "puller", "pull-pw"
	cases := []struct {
		name   string
		start  func(t *testing.T) (*upServer, registryRow, func(t *testing.T))
		status int // of every pull; 200 unless set
		code   string
	}{
		{name: "basic, distribution", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			return newUpstream(t, distribution, registrytest.WithBasicAuth(user, pass)), registryRow{Username: user, Password: pass}, nil
		}},
		{name: "basic, ggcr", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			return newUpstream(t, ggcr, registrytest.WithBasicAuth(user, pass)), registryRow{Username: user, Password: pass}, nil
		}},
		{name: "basic, wrong password", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			return newUpstream(t, distribution, registrytest.WithBasicAuth(user, pass)), registryRow{Username: user, Password: "wrong"}, nil
		}, status: http.StatusServiceUnavailable, code: "UPSTREAM_UNAVAILABLE"},
		{name: "bearer with credentials, ggcr", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			ta := registrytest.NewTokenAuth(t, "registrytest")
			ta.SetCredentials(user, pass)
			up := newUpstream(t, ggcr, registrytest.WithWrapper(ta.Middleware))
			return up, registryRow{Username: user, Password: pass}, func(t *testing.T) {
				require.Contains(t, ta.Scopes(), "repository:app:pull")
			}
		}},
		{name: "bearer anonymous, distribution", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			ta := registrytest.NewTokenAuth(t, "registrytest")
			up := newUpstream(t, distribution, registrytest.WithWrapper(ta.Middleware))
			return up, registryRow{}, func(t *testing.T) {
				require.Contains(t, ta.Scopes(), "repository:app:pull")
			}
		}},
		{name: "bearer, wrong password", start: func(t *testing.T) (*upServer, registryRow, func(*testing.T)) {
			ta := registrytest.NewTokenAuth(t, "registrytest")
			ta.SetCredentials(user, pass)
			return newUpstream(t, ggcr, registrytest.WithWrapper(ta.Middleware)), registryRow{Username: user, Password: "wrong"}, nil
		}, status: http.StatusServiceUnavailable, code: "UPSTREAM_UNAVAILABLE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, row, check := c.start(t)
			img := up.PushImage(t, "app", "v1")
			e := newEnv(t, up, row)
			layer := img.Layers[0].Digest
			pulls := []struct {
				ref  string
				want []byte
			}{
				{"app/manifests/v1", img.Body},
				{"app/blobs/" + layer.String(), img.Blobs[layer]},
				{"app/tags/list", []byte(`{"name":"cache/app","tags":["v1"]}`)},
			}
			for _, p := range pulls {
				r := e.get(p.ref)
				if c.status != 0 {
					requireCode(t, r, c.status, c.code)
					continue
				}
				require.Equal(t, http.StatusOK, r.status, "%s: %s", p.ref, r.body)
				if p.ref == "app/tags/list" {
					require.JSONEq(t, string(p.want), string(r.body))
				} else {
					requireOK(t, r, p.want)
				}
			}
			if check != nil {
				check(t)
			}
		})
	}
}

// Pushes into a proxy-cache project: only manifests with a subject (signatures, attestations of proxied
// content) are accepted; everything else is DENIED.
func TestPushIntoProxyProject(t *testing.T) {
	e, up, img := newImageEnv(t, distribution, "app", "v1")
	requireOK(t, e.get("app/manifests/v1"), img.Body)

	plain, signed := e.signatureManifests(t, img)
	signedDigest := digest.FromBytes(signed)

	cases := []struct {
		name   string
		ref    string
		body   []byte
		status int
		code   string
	}{
		{"no subject, by tag", "mine", plain, http.StatusForbidden, "DENIED"},
		{"no subject, by digest", digest.FromBytes(plain).String(), plain, http.StatusForbidden, "DENIED"},
		{"no subject, over a proxied tag", "v1", plain, http.StatusForbidden, "DENIED"},
		// A referrer is pushed by digest: by tag it would move (or shadow) the upstream's tags.
		{"with subject, over a proxied tag", "v1", signed, http.StatusForbidden, "DENIED"},
		{"with subject, by a new tag", "sig", signed, http.StatusForbidden, "DENIED"},
		{"with subject, by digest", signedDigest.String(), signed, http.StatusCreated, ""},
	}
	// Tag parameters would move the upstream's tags too.
	requireCode(t, e.do(http.MethodPut, "app/manifests/"+signedDigest.String()+"?tag=mine", ocispec.MediaTypeImageManifest, signed),
		http.StatusForbidden, "DENIED")
	for _, c := range cases {
		r := e.do(http.MethodPut, "app/manifests/"+c.ref, ocispec.MediaTypeImageManifest, c.body)
		if c.code != "" {
			requireCode(t, r, c.status, c.code)
			continue
		}
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		require.Equal(t, signedDigest.String(), r.header.Get("Docker-Content-Digest"))
		require.Equal(t, img.Manifest.Digest.String(), r.header.Get("OCI-Subject"))
	}
	// The referrers tag-schema index notation writes beside its signature is accepted by its tag;
	// other index tags are not.
	tagIndex, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: signedDigest, Size: int64(len(signed)), ArtifactType: sigType}},
	})
	require.NoError(t, err)
	schemaTag := "sha256-" + img.Manifest.Digest.Encoded()
	r0 := e.do(http.MethodPut, "app/manifests/"+schemaTag, ocispec.MediaTypeImageIndex, tagIndex)
	require.Equal(t, http.StatusCreated, r0.status, "%s", r0.body)
	requireCode(t, e.do(http.MethodPut, "app/manifests/sha256-notahex", ocispec.MediaTypeImageIndex, tagIndex), http.StatusForbidden, "DENIED")
	requireCode(t, e.do(http.MethodPut, "app/manifests/v2", ocispec.MediaTypeImageIndex, tagIndex), http.StatusForbidden, "DENIED")

	_, err = e.local.GetManifest(t.Context(), e.repo("app"), digest.FromBytes(plain).String())
	require.True(t, errcode.IsCode(err, errcode.ErrManifestUnknown), "a denied manifest is not stored: %v", err)

	// The accepted one is served locally (no upstream GET) and listed as a referrer of its subject.
	gets := up.hits.count(http.MethodGet, "manifests")
	requireOK(t, e.get("app/manifests/"+signedDigest.String()), signed)
	require.Equal(t, gets, up.hits.count(http.MethodGet, "manifests"))
	r := e.get("app/referrers/" + img.Manifest.Digest.String())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var list ocispec.Index
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Manifests, 1)
	require.Equal(t, signedDigest, list.Manifests[0].Digest)
	require.Equal(t, sigType, list.Manifests[0].ArtifactType)

	// The proxied tag was not overwritten by the denied push.
	m, err := e.local.GetManifest(context.Background(), e.repo("app"), "v1")
	require.NoError(t, err)
	require.Equal(t, img.Manifest.Digest, m.Digest)

	// Each records how it came: the pulled image from the upstream, the referrer from a client push.
	for d, origin := range map[digest.Digest]string{img.Manifest.Digest: meta.OriginPulled, signedDigest: meta.OriginPushed} {
		a, err := e.store.GetArtifact(t.Context(), e.repo("app").Name, d.String())
		require.NoError(t, err)
		require.Equal(t, origin, a.Origin, d)
	}
}

// sigType is the artifact type of the signatures tests push into a proxy project.
const sigType = "application/vnd.example.signature.v1+json"

// signatureManifests uploads the blobs of a signature artifact through Berth (uploads are local in a
// proxy project) into repository "app", and returns its manifest without a subject and with img as its
// subject; neither manifest is pushed.
func (e *env) signatureManifests(t *testing.T, img registrytest.Image) (plain, signed []byte) {
	t.Helper()
	pushBlob := func(data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		r := e.do(http.MethodPost, "app/blobs/uploads/?digest="+d.String(), "application/octet-stream", data)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
	}
	cfg := pushBlob([]byte("{}"))
	cfg.MediaType = "application/vnd.oci.empty.v1+json"
	layer := pushBlob(randomBytes(128))
	layer.MediaType = "application/octet-stream"
	manifest := func(subject *ocispec.Descriptor) []byte {
		b, err := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: sigType, Config: cfg, Layers: []ocispec.Descriptor{layer}, Subject: subject,
		})
		require.NoError(t, err)
		return b
	}
	return manifest(nil), manifest(&ocispec.Descriptor{MediaType: img.Manifest.MediaType, Digest: img.Manifest.Digest, Size: img.Manifest.Size})
}

// A client that found a blob with HEAD (answered from the upstream) does not upload it; the referrer it
// then pushes must still be accepted, every time: the blob is pulled through and committed before the
// local push checks its references (reading a fill to its end is not enough: the last byte is released
// before the commit).
func TestPushReferrerWithUpstreamOnlyBlobs(t *testing.T) {
	e, up, img := newImageEnv(t, distribution, "app", "v1")
	requireOK(t, e.get("app/manifests/v1"), img.Body)
	subject := &ocispec.Descriptor{MediaType: img.Manifest.MediaType, Digest: img.Manifest.Digest, Size: img.Manifest.Size}
	for i := range 20 {
		cfg := up.PushBlob(t, "app", []byte(fmt.Sprintf(`{"n":%d}`, i)))
		cfg.MediaType = "application/vnd.example.config.v1+json"
		layer := up.PushBlob(t, "app", randomBytes(64<<10))
		layer.MediaType = "application/octet-stream"
		for _, d := range []digest.Digest{cfg.Digest, layer.Digest} {
			r := e.do(http.MethodHead, "app/blobs/"+d.String(), "", nil)
			require.Equal(t, http.StatusOK, r.status, "HEAD answered from the upstream")
		}
		body, err := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: "application/vnd.example.signature.v1+json", Config: cfg, Layers: []ocispec.Descriptor{layer}, Subject: subject,
		})
		require.NoError(t, err)
		r := e.do(http.MethodPut, "app/manifests/"+digest.FromBytes(body).String(), ocispec.MediaTypeImageManifest, body)
		require.Equal(t, http.StatusCreated, r.status, "push %d: %s", i, r.body)
	}
}
