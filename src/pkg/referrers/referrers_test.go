package referrers_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
)

// TestUpstreamReferrers lists referrers through the controller from an upstream with the referrers API
// (go-containerregistry, which ignores artifactType and reports config.mediaType as the artifactType)
// and from one without it (CNCF distribution: the referrers tag schema), over both caches.
func TestUpstreamReferrers(t *testing.T) {
	for _, kind := range []upstreamKind{ggcrAPI, distribution} {
		for _, ck := range cacheKinds {
			t.Run(string(kind)+"/"+ck.name, func(t *testing.T) {
				up, img := newSubject(t, kind)
				subject := img.Manifest.Digest
				sig := up.pushNew(t, img.Manifest, atNotation, true, map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": "[\"abc\"]"})
				bundle := up.pushNew(t, img.Manifest, atBundle, false, map[string]string{"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"})
				source := cachekey.SourceReferrersAPI
				if kind == distribution {
					source = cachekey.SourceTagSchema
					// The tag-schema index as a sloppy client wrote it: descriptor fields the spec does not
					// define for referrers entries.
					dirty := sig.desc
					dirty.URLs = []string{"https://example.com/sig"}
					dirty.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
					dirty.Data = []byte("{}")
					up.srv.PushTagSchemaIndex(t, repoPath, subject, dirty, bundle.desc)
				}
				e := newEnv(t, up, ck)
				repo := e.repo(repoPath)

				// A filtered request is forwarded with its filter, which the upstream may ignore; the
				// filter is applied after the merge and the answer says so.
				p, err := e.list(repo, subject, "artifactType="+url.QueryEscape(atBundle), "", 0)
				require.NoError(t, err)
				require.Equal(t, content.CacheMiss, p.Cache)
				require.Equal(t, []string{"artifactType"}, p.FiltersApplied)
				require.Equal(t, descs(bundle), p.Manifests)
				if kind == ggcrAPI {
					require.Equal(t, atBundle, up.lastReferrersQuery().Get("artifactType"), "the filter is forwarded verbatim")
				}

				// Unfiltered: every referrer, each descriptor as the spec computes it from the manifest
				// (go-containerregistry reported the bundle under the empty config type; the tag index
				// carried urls, platform and data).
				got := e.mustList(repo, subject, "", content.CacheMiss)
				require.ElementsMatch(t, descs(sig, bundle), got)
				ce, ok := e.cached(e.key(repo, subject, ""))
				require.True(t, ok)
				require.Equal(t, source, ce.Source)

				// Another filter is answered from the fresh unfiltered list: the upstream is not asked.
				before := up.referrersRequests()
				p, err = e.list(repo, subject, "artifactType="+url.QueryEscape(atNotation), "", 0)
				require.NoError(t, err)
				require.Equal(t, content.CacheHit, p.Cache)
				require.Equal(t, []string{"artifactType"}, p.FiltersApplied)
				require.Equal(t, descs(sig), p.Manifests)
				require.Equal(t, before, up.referrersRequests())

				// A subject nobody refers to: an empty index.
				other := up.srv.PushImage(t, repoPath, "v2")
				require.Empty(t, e.mustList(repo, other.Manifest.Digest, "", content.CacheMiss))
			})
		}
	}
}

// TestMergeWithLocal merges referrers pushed into the proxy project with the upstream's: one entry per
// digest, local-only entries first, local pushes visible at once while the upstream part is cached, and
// only the upstream part in the cache.
func TestMergeWithLocal(t *testing.T) {
	eachCache(t, func(t *testing.T, ck cacheKind) {
		up, img := newSubject(t, ggcrAPI)
		subject := img.Manifest.Digest
		upOnly := up.pushNew(t, img.Manifest, atNotation, true, nil)
		both := up.pushNew(t, img.Manifest, atBundle, false, map[string]string{"org.example": "both"})
		e := newEnv(t, up, ck)
		repo := e.repo(repoPath)
		e.pushLocal(repo, both) // signed against the upstream and against Berth: the same bytes
		mine := newArtifact(t, img.Manifest, atBundle, false, map[string]string{"org.example": "mine"})
		e.pushLocal(repo, mine)

		got := e.mustList(repo, subject, "", content.CacheMiss)
		require.ElementsMatch(t, descs(upOnly, both, mine), got, "each digest exactly once")
		require.Equal(t, mine.desc, got[0], "local-only entries come first")

		// A local push is visible at once: the upstream part comes from the cache, the local part
		// is read at request time.
		before := up.referrersRequests()
		later := newArtifact(t, img.Manifest, atNotation, true, map[string]string{"org.example": "later"})
		e.pushLocal(repo, later)
		got = e.mustList(repo, subject, "", content.CacheHit)
		require.ElementsMatch(t, descs(upOnly, both, mine, later), got)
		require.ElementsMatch(t, descs(mine, later), got[:2])
		require.Equal(t, before, up.referrersRequests())

		// The filter applies to the merged list.
		p, err := e.list(repo, subject, "artifactType="+url.QueryEscape(atNotation), "", 0)
		require.NoError(t, err)
		require.ElementsMatch(t, descs(upOnly, later), p.Manifests)

		// Only the upstream's answer is cached.
		ce, ok := e.cached(e.key(repo, subject, ""))
		require.True(t, ok)
		var idx ocispec.Index
		require.NoError(t, json.Unmarshal(ce.Index, &idx))
		require.ElementsMatch(t, digests(descs(upOnly, both)), digests(idx.Manifests))
	})
}

// TestUpstreamUnknownRepository: an upstream that does not know the repository (404 NAME_UNKNOWN from
// go-containerregistry; distribution has no referrers route and no tag) gives the local referrers, or an
// empty index, never an error.
func TestUpstreamUnknownRepository(t *testing.T) {
	for _, kind := range []upstreamKind{ggcrAPI, distribution} {
		t.Run(string(kind), func(t *testing.T) {
			up := newRegistry(t, kind)
			e := newEnv(t, up, cacheKinds[0])
			repo := e.repo("ghost")
			subject := ocispec.Descriptor{MediaType: manifestMT, Digest: digest.FromString("ghost subject"), Size: 321}

			require.Empty(t, e.mustList(repo, subject.Digest, "", content.CacheMiss))
			require.Positive(t, up.referrersRequests())

			local := newArtifact(t, subject, atNotation, true, nil)
			e.pushLocal(repo, local)
			require.Equal(t, descs(local), e.mustList(repo, subject.Digest, "", content.CacheHit))
		})
	}
}

// TestToggleOff: a proxy-cache project without proxy_referrer_api ("false" or absent) answers from what
// Berth holds, and the upstream is never contacted.
func TestToggleOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string]string
	}{
		{"false", map[string]string{meta.MetaProxyReferrerAPI: "false"}},
		{"absent", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, img := newSubject(t, ggcrAPI)
			up.push(t, repoPath, newArtifact(t, img.Manifest, atNotation, true, nil))
			e := newEnv(t, up, cacheKinds[0])
			off := e.newProject("off", tc.md)
			repo := e.repo(repoPath, off)
			mine := newArtifact(t, img.Manifest, atBundle, false, nil)
			e.pushLocal(repo, mine)
			before := up.requests()

			p, err := e.list(repo, img.Manifest.Digest, "", "", 0)
			require.NoError(t, err)
			require.Equal(t, descs(mine), p.Manifests)
			require.Empty(t, p.Cache, "no cache is involved")
			p, err = e.list(repo, img.Manifest.Digest, "artifactType="+url.QueryEscape(atNotation), "", 0)
			require.NoError(t, err)
			require.Empty(t, p.Manifests)
			require.Equal(t, []string{"artifactType"}, p.FiltersApplied)
			require.Equal(t, before, up.requests(), "the upstream is never contacted")
		})
	}
}
