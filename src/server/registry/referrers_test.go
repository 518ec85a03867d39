package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/local"
)

const (
	atBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	atCosign = "application/vnd.dev.cosign.artifact.sig.v1+json"
	atList   = "application/vnd.example.list"
	atSBOM   = "application/spdx+json"
)

// pushIndex pushes an OCI index (with no entries) that refers to subject and returns its descriptor.
func (e *env) pushIndex(repo, artifactType string, subject image, annotations map[string]string) ocispec.Descriptor {
	e.t.Helper()
	idx := ocispec.Index{
		MediaType:    ocispec.MediaTypeImageIndex,
		ArtifactType: artifactType,
		Manifests:    []ocispec.Descriptor{},
		Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject.digest, Size: subject.size},
		Annotations:  annotations,
	}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	require.NoError(e.t, err)
	d := digest.FromBytes(body)
	r := e.pushManifest(repo, d.String(), ocispec.MediaTypeImageIndex, body)
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(e.t, subject.digest.String(), r.header.Get("OCI-Subject"))
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(body)),
		ArtifactType: artifactType, Annotations: annotations}
}

// pushReferrer pushes an image manifest that refers to subject and returns its expected descriptor.
func (e *env) pushReferrer(repo string, subject image, o imageOpts) ocispec.Descriptor {
	e.t.Helper()
	o.subject = &subject
	body := e.imageManifest(repo, o)
	d := digest.FromBytes(body)
	r := e.pushManifest(repo, d.String(), ocispec.MediaTypeImageManifest, body)
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(e.t, subject.digest.String(), r.header.Get("OCI-Subject"))
	at := o.artifactType
	if at == "" {
		at = o.configType
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(body)),
		ArtifactType: at, Annotations: o.annotations}
}

// referrers GETs one referrers page and checks the headers every page carries.
func (e *env) referrers(path string) (ocispec.Index, resp) {
	e.t.Helper()
	r := e.do(req{method: http.MethodGet, path: path})
	require.Equal(e.t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(e.t, ocispec.MediaTypeImageIndex, r.header.Get("Content-Type"))
	require.Equal(e.t, strconv.Itoa(len(r.body)), r.header.Get("Content-Length"))
	var idx ocispec.Index
	require.NoError(e.t, json.Unmarshal(r.body, &idx))
	require.Equal(e.t, 2, idx.SchemaVersion)
	require.Equal(e.t, ocispec.MediaTypeImageIndex, idx.MediaType)
	require.NotNil(e.t, idx.Manifests, "manifests must be a list, never null: %s", r.body)
	return idx, r
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	subject := e.pushImage(repo, "v1", imageOpts{seed: "subject"})
	want := []ocispec.Descriptor{
		e.pushReferrer(repo, subject, imageOpts{seed: "bundle", artifactType: atBundle, configType: ocispec.MediaTypeEmptyJSON,
			annotations: map[string]string{"dev.sigstore.bundle.content": "message-signature"}}),
		e.pushReferrer(repo, subject, imageOpts{seed: "cosign", configType: atCosign}),
		e.pushIndex(repo, atList, subject, map[string]string{"org.example": "yes"}),
		e.pushIndex(repo, "", subject, nil),
	}
	path := "/v2/" + repo + "/referrers/" + subject.digest.String()

	t.Run("all", func(t *testing.T) {
		idx, r := e.referrers(path)
		require.Empty(t, r.header.Get("OCI-Filters-Applied"))
		require.Empty(t, r.header.Get("Link"))
		require.Empty(t, r.header.Get("X-Cache"))
		require.ElementsMatch(t, want, idx.Manifests)
	})
	for _, at := range []string{atBundle, atCosign, atList} {
		t.Run("filter "+at, func(t *testing.T) {
			idx, r := e.referrers(path + "?artifactType=" + url.QueryEscape(at))
			require.Equal(t, "artifactType", r.header.Get("OCI-Filters-Applied"))
			require.Len(t, idx.Manifests, 1)
			require.Equal(t, at, idx.Manifests[0].ArtifactType)
		})
	}
	t.Run("filter without match", func(t *testing.T) {
		idx, r := e.referrers(path + "?artifactType=" + url.QueryEscape(atSBOM))
		require.Equal(t, "artifactType", r.header.Get("OCI-Filters-Applied"))
		require.Empty(t, idx.Manifests)
	})
	t.Run("repository without content", func(t *testing.T) {
		idx, _ := e.referrers("/v2/private/empty/referrers/" + subject.digest.String())
		require.Empty(t, idx.Manifests)
	})
	t.Run("deleted referrer leaves the list", func(t *testing.T) {
		r := e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + want[1].Digest.String()})
		require.Equal(t, http.StatusAccepted, r.status)
		idx, _ := e.referrers(path)
		require.ElementsMatch(t, []ocispec.Descriptor{want[0], want[2], want[3]}, idx.Manifests)
	})
	t.Run("deleting the subject keeps its referrers", func(t *testing.T) {
		r := e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + subject.digest.String()})
		require.Equal(t, http.StatusAccepted, r.status)
		idx, _ := e.referrers(path)
		require.Len(t, idx.Manifests, 3)
	})
	for _, tc := range []struct {
		name, path, code string
		status           int
	}{
		{"malformed digest", "/v2/" + repo + "/referrers/sha256:nothex", "DIGEST_INVALID", http.StatusBadRequest},
		{"not a digest", "/v2/" + repo + "/referrers/latest", "DIGEST_INVALID", http.StatusBadRequest},
		{"bad cursor", path + "?last=garbage", "PAGINATION_NUMBER_INVALID", http.StatusBadRequest},
		{"bad n", path + "?n=-3", "PAGINATION_NUMBER_INVALID", http.StatusBadRequest},
		{"two artifactType values", path + "?artifactType=" + url.QueryEscape(atBundle) + "&artifactType=" + url.QueryEscape(atCosign),
			"BAD_REQUEST", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do(req{method: http.MethodGet, path: tc.path}), tc.status, tc.code)
		})
	}
}

// TestReferrersOfUnusualSubjects: a subject without referrers, one that was never pushed, and one
// named by a sha512 digest.
func TestReferrersOfUnusualSubjects(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	e.pushImage(repo, "v1", imageOpts{seed: "subject"}) // the repository has content
	t.Run("no referrers", func(t *testing.T) {
		idx, r := e.referrers("/v2/" + repo + "/referrers/" + digest.FromString("lonely").String())
		require.Empty(t, idx.Manifests)
		require.Contains(t, string(r.body), `"manifests":[]`)
	})
	t.Run("subject not pushed yet", func(t *testing.T) {
		ghost := image{digest: digest.FromString("ghost"), size: 42}
		d := e.pushReferrer(repo, ghost, imageOpts{seed: "ghost-ref", artifactType: atSBOM})
		idx, _ := e.referrers("/v2/" + repo + "/referrers/" + ghost.digest.String())
		require.Equal(t, []ocispec.Descriptor{d}, idx.Manifests)
	})
	t.Run("sha512 subject", func(t *testing.T) {
		body := e.imageManifest(repo, imageOpts{seed: "s512"})
		sd := digest.SHA512.FromBytes(body)
		r := e.pushManifest(repo, sd.String(), ocispec.MediaTypeImageManifest, body)
		require.Equal(t, http.StatusCreated, r.status)
		s512 := image{digest: sd, size: int64(len(body))}
		d := e.pushReferrer(repo, s512, imageOpts{seed: "s512-ref", artifactType: atSBOM})
		idx, _ := e.referrers("/v2/" + repo + "/referrers/" + sd.String())
		require.Equal(t, []ocispec.Descriptor{d}, idx.Manifests)
	})
}

// walkReferrers follows Link headers from path and returns every entry in order and the page sizes.
func (e *env) walkReferrers(path string, check func(next *url.URL)) ([]ocispec.Descriptor, []int) {
	e.t.Helper()
	var all []ocispec.Descriptor
	var sizes []int
	for path != "" {
		idx, r := e.referrers(path)
		all = append(all, idx.Manifests...)
		sizes = append(sizes, len(idx.Manifests))
		path = nextPath(e.t, r)
		if path != "" {
			u, err := url.Parse(path)
			require.NoError(e.t, err)
			require.Empty(e.t, u.Host, "the Link stays on this host")
			check(u)
		}
		require.Less(e.t, len(sizes), 100, "pagination does not end")
	}
	return all, sizes
}

func TestReferrersPagination(t *testing.T) {
	// The service serves (at most) 3 per page (content.PageRule); the handler passes n on as asked.
	e := newEnv(t, envOpts{local: local.Options{MaxReferrersPage: 3}})
	const repo = "private/app"
	subject := e.pushImage(repo, "v1", imageOpts{seed: "subject"})
	var sigs, sboms []ocispec.Descriptor
	for i := range 7 {
		sigs = append(sigs, e.pushReferrer(repo, subject, imageOpts{seed: fmt.Sprintf("sig%d", i), artifactType: atBundle}))
	}
	for i := range 3 {
		sboms = append(sboms, e.pushReferrer(repo, subject, imageOpts{seed: fmt.Sprintf("sbom%d", i), artifactType: atSBOM}))
	}
	base := "/v2/" + repo + "/referrers/" + subject.digest.String()
	var full []ocispec.Descriptor // the service's own order, page by page
	for q := (content.ReferrersQuery{}); ; {
		p, err := e.svc.ListReferrers(context.Background(), content.Repo{Name: repo}, subject.digest, q)
		require.NoError(t, err)
		full = append(full, p.Manifests...)
		if q.Last = p.Next; q.Last == "" {
			break
		}
	}
	require.Len(t, full, 10)

	for _, tc := range []struct {
		name   string
		query  string
		n      string // n expected in the Link
		at     string
		sizes  []int
		expect []ocispec.Descriptor // in any order; nil: the full list in its order
	}{
		{"client n", "?n=2", "2", "", []int{2, 2, 2, 2, 2}, nil},
		{"service default without n", "", "3", "", []int{3, 3, 3, 1}, nil},
		// The service serves at most 3 whatever n says; the Link keeps the client's n.
		{"client n above the service maximum", "?n=4", "4", "", []int{3, 3, 3, 1}, nil},
		{"client n far above the service maximum", "?n=50", "50", "", []int{3, 3, 3, 1}, nil},
		{"n=0 means the default", "?n=0", "3", "", []int{3, 3, 3, 1}, nil},
		{"filtered", "?n=2&artifactType=" + url.QueryEscape(atBundle), "2", atBundle, []int{2, 2, 2, 1}, sigs},
		{"filtered, one page", "?artifactType=" + url.QueryEscape(atSBOM), "", atSBOM, []int{3}, sboms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, sizes := e.walkReferrers(base+tc.query, func(next *url.URL) {
				require.Equal(t, base, next.Path)
				q := next.Query()
				require.Equal(t, tc.n, q.Get("n"))
				require.NotEmpty(t, q.Get("last"))
				require.Equal(t, tc.at, q.Get("artifactType"))
			})
			require.Equal(t, tc.sizes, sizes)
			if tc.expect == nil {
				require.Equal(t, full, got, "pages concatenate to the full list, in order")
			} else {
				require.ElementsMatch(t, tc.expect, got)
			}
		})
	}

	t.Run("a referrer pushed between pages neither repeats nor shifts entries", func(t *testing.T) {
		idx, r := e.referrers(base + "?n=3")
		next := nextPath(t, r)
		require.NotEmpty(t, next)
		e.pushReferrer(repo, subject, imageOpts{seed: "late", artifactType: atBundle})
		rest, _ := e.walkReferrers(next, func(*url.URL) {})
		seen := map[digest.Digest]bool{}
		for _, d := range append(idx.Manifests, rest...) {
			require.False(t, seen[d.Digest], "duplicate %s", d.Digest)
			seen[d.Digest] = true
		}
		for _, d := range full {
			require.True(t, seen[d.Digest], "missing %s", d.Digest)
		}
	})
}

// cacheTagger reports every referrers page as a cache hit, as a caching service would.
type cacheTagger struct {
	content.Service
}

func (c cacheTagger) ListReferrers(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) (*content.ReferrersPage, error) {
	p, err := c.Service.ListReferrers(ctx, repo, subject, q)
	if err == nil {
		p.Cache = content.CacheHit
	}
	return p, err
}

func TestReferrersXCache(t *testing.T) {
	e := newEnv(t, envOpts{wrap: func(s content.Service) content.Service { return cacheTagger{s} }})
	_, r := e.referrers("/v2/private/app/referrers/" + digest.FromString("x").String())
	require.Equal(t, content.CacheHit, r.header.Get("X-Cache"))
}

// TestReferrersDefaultPageSize: without n the service's default page size applies, below its maximum.
func TestReferrersDefaultPageSize(t *testing.T) {
	e := newEnv(t, envOpts{local: local.Options{MaxReferrersPage: 10, ReferrersPageSize: 2}})
	subject := e.pushImage("private/app", "v1", imageOpts{seed: "subject"})
	for i := range 5 {
		e.pushReferrer("private/app", subject, imageOpts{seed: fmt.Sprintf("r%d", i), artifactType: atSBOM})
	}
	base := "/v2/private/app/referrers/" + subject.digest.String()
	_, sizes := e.walkReferrers(base, func(next *url.URL) { require.Equal(t, "2", next.Query().Get("n")) })
	require.Equal(t, []int{2, 2, 1}, sizes)
	_, sizes = e.walkReferrers(base+"?n=8", func(*url.URL) { t.Fatal("n=8 fits all five") })
	require.Equal(t, []int{5}, sizes)
}
