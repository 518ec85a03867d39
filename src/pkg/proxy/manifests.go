package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// GetManifest serves a manifest of a proxy-cache project: by digest from local storage when held, else
// from the upstream; by tag after one upstream HEAD that names the current digest, or from the local
// copy of the digest the upstream named within the project's tag freshness window. When the upstream
// fails (anything but a 404) and a local copy exists, the local copy is served with Stale set. An
// upstream 404 is remembered for the negative-cache TTL (memo.go).
func (s *Service) GetManifest(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	if !repo.Project.IsProxy() {
		return s.Local.GetManifest(ctx, repo, ref)
	}
	m, err := s.getProxied(ctx, repo, ref)
	if err == nil {
		s.pulled(ctx, repo, m)
	}
	return m, err
}

func (s *Service) getProxied(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	if d, err := digest.Parse(ref); err == nil {
		if m, err := s.Local.GetManifest(ctx, repo, ref); err == nil {
			return m, nil
		} else if !errcode.IsCode(err, errcode.ErrManifestUnknown) {
			return nil, err
		}
		if s.memo.isNotFound(keyOf(refManifest, repo, ref)) {
			return nil, errUnknownUpstream(errcode.ErrManifestUnknown)
		}
		m, err := s.fetchManifest(ctx, up, repo, d, "")
		if err == nil {
			s.Local.RecordPull(ctx, repo, m.Digest)
		}
		return m, err
	}
	k := keyOf(refManifest, repo, ref)
	if s.memo.isNotFound(k) {
		return nil, errUnknownUpstream(errcode.ErrManifestUnknown)
	}
	if m := s.freshTag(ctx, repo, k); m != nil {
		return m, nil
	}
	m, _, err := s.tagChecks.Do(ctx, k.flight(), func(ctx context.Context) (*content.Manifest, error) {
		// A check that ended between this caller's look at the memo and now answers it.
		if s.memo.isNotFound(k) {
			return nil, errUnknownUpstream(errcode.ErrManifestUnknown)
		}
		if m := s.freshTag(ctx, repo, k); m != nil {
			return m, nil
		}
		return s.checkTag(ctx, up, repo, ref, k)
	})
	return m, err
}

// freshTag returns the local copy of the digest the upstream named for tag k within the project's
// freshness window, or nil.
func (s *Service) freshTag(ctx context.Context, repo content.Repo, k refKey) *content.Manifest {
	if s.memo.tagFreshness(repo.Project) <= 0 {
		return nil
	}
	d, ok := s.memo.checkedDigest(k)
	if !ok {
		return nil
	}
	m, err := s.Local.GetManifest(ctx, repo, d.String())
	if err != nil {
		return nil
	}
	return m
}

// checkTag asks the upstream which digest tag names and serves it (fetching it when not held). It runs
// once per tag at a time, whoever asks meanwhile shares its answer.
func (s *Service) checkTag(ctx context.Context, up Upstream, repo content.Repo, ref string, k refKey) (*content.Manifest, error) {
	desc, headErr := up.ManifestExists(ctx, repo.Path, ref)
	if headErr != nil {
		if servesLocal(headErr) {
			if m := s.staleTag(ctx, repo, ref, headErr); m != nil {
				return m, nil
			}
		} else {
			s.memo.setNotFound(k)
		}
		return nil, upstreamError(headErr, errcode.ErrManifestUnknown)
	}
	if m, err := s.Local.GetManifest(ctx, repo, desc.Digest.String()); err == nil {
		// Held already: make sure the local tag follows the upstream one.
		if cur, err := s.Local.GetManifest(content.WithPullKind(ctx, content.Internal), repo, ref); err != nil || cur.Digest != m.Digest {
			if err := s.Local.RecordManifest(ctx, repo, ref, m); err != nil {
				return nil, err
			}
		}
		s.memo.setChecked(k, repo.Project, m.Digest)
		return m, nil
	}
	m, err := s.fetchManifest(ctx, up, repo, desc.Digest, ref)
	if err == nil {
		s.Local.RecordPull(ctx, repo, m.Digest)
	}
	if err != nil && ctx.Err() == nil && !errcode.IsCode(err, errcode.ErrManifestUnknown) {
		// The tag moved upstream but the new manifest could not be fetched (rate limit, outage between
		// HEAD and GET, invalid answer): the local copy is still better than an error.
		if local := s.staleTag(ctx, repo, ref, err); local != nil {
			return local, nil
		}
	}
	if err == nil {
		s.memo.setChecked(k, repo.Project, m.Digest)
	}
	return m, err
}

// errUnknownUpstream is the answer for a reference the upstream said, recently, it does not hold.
func errUnknownUpstream(notFound errcode.Code) error {
	return notFound.WithMessage("unknown to the upstream registry")
}

// staleTag returns the local manifest of tag marked Stale, or nil when there is none; upErr is the
// upstream failure that made it necessary (logged).
func (s *Service) staleTag(ctx context.Context, repo content.Repo, tag string, upErr error) *content.Manifest {
	m, err := s.Local.GetManifest(ctx, repo, tag)
	if err != nil {
		return nil
	}
	s.log.WarnContext(ctx, "upstream failed; serving the local copy", "repository", repo.Name, "tag", tag, "err", upErr)
	m.Stale = true
	return m
}

// fetchManifest downloads the manifest d once however many clients ask, records it (and the tag) and
// returns it.
func (s *Service) fetchManifest(ctx context.Context, up Upstream, repo content.Repo, d digest.Digest, tag string) (*content.Manifest, error) {
	key := repo.Name + "@" + d.String() + ":" + tag
	m, _, err := s.manifests.Do(ctx, key, func(ctx context.Context) (*content.Manifest, error) {
		if s.memo.isNotFound(keyOf(refManifest, repo, d.String())) { // a fetch that ended just before answers it
			return nil, errUnknownUpstream(errcode.ErrManifestUnknown)
		}
		um, err := up.GetManifest(ctx, repo.Path, d.String())
		if err != nil {
			if upstream.IsNotFound(err) {
				s.memo.setNotFound(keyOf(refManifest, repo, d.String()))
			}
			return nil, upstreamError(err, errcode.ErrManifestUnknown)
		}
		if um.Digest != d {
			return nil, errcode.ErrUpstreamInvalid.WithMessage("upstream manifest digest %s does not match %s", um.Digest, d)
		}
		m := &content.Manifest{Digest: um.Digest, MediaType: um.MediaType, Body: um.Body}
		kept, err := s.recordPulled(ctx, repo, tag, m)
		if err != nil {
			return nil, err
		}
		if !kept { // over the project's quota: served, not kept (its bytes were written first)
			s.passthrough(ctx, repo, m.Digest.String(), int64(len(m.Body)), true)
		}
		return m, nil
	})
	return m, err
}

// DeleteManifest deletes through the local service; in a proxy-cache project it also forgets what the
// upstream said of ref, so that the next pull of a deleted tag asks the upstream again instead of
// serving the digest the tag named within its freshness window.
func (s *Service) DeleteManifest(ctx context.Context, repo content.Repo, ref string) error {
	err := s.Local.DeleteManifest(ctx, repo, ref)
	if repo.Project.IsProxy() {
		s.memo.forget(keyOf(refManifest, repo, ref))
	}
	return err
}

// PutManifest accepts, in a proxy-cache project, only manifests that carry a subject: that is how an
// organisation signs or attests proxied content locally. They must be pushed by digest: the project's
// tags mirror the upstream's. The one tag accepted is a referrers tag-schema index (sha256-<hex>),
// which notation writes by default beside its signature; tag parameters are refused. Every other push
// is DENIED.
func (s *Service) PutManifest(ctx context.Context, repo content.Repo, ref, mediaType string, body []byte, tags ...string) (*content.PutResult, error) {
	if repo.Project.IsProxy() && len(tags) > 0 {
		return nil, errcode.ErrDenied.WithMessage("project %s is a proxy cache: its tags belong to the upstream", repo.Project.Name)
	}
	if repo.Project.IsProxy() && !isReferrersTagIndex(ref, mediaType) {
		if !hasSubject(body) {
			return nil, errcode.ErrDenied.WithMessage("project %s is a proxy cache: only manifests with a subject (signatures, attestations) may be pushed", repo.Project.Name)
		}
		if _, err := digest.Parse(ref); err != nil {
			return nil, errcode.ErrDenied.WithMessage("project %s is a proxy cache: push referrers by digest; its tags belong to the upstream", repo.Project.Name)
		}
	}
	if repo.Project.IsProxy() {
		if err := s.pullReferences(ctx, repo, body); err != nil {
			return nil, err
		}
	}
	return s.Local.PutManifest(ctx, repo, ref, mediaType, body, tags...)
}

// pullReferences makes the blobs and manifests a pushed manifest references local, pulling through the
// ones only the upstream holds. A client that found a blob with HEAD (answered from the upstream) does
// not upload it again, and the local push must then still find it.
func (s *Service) pullReferences(ctx context.Context, repo content.Repo, body []byte) error {
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(body, &m) != nil {
		return nil // the local push reports the invalid manifest
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, d := range blobs {
		if d.Digest.Validate() != nil || len(d.URLs) > 0 {
			continue
		}
		// FetchBlob returns once the blob is stored and linked: a fill's reader gets its last byte before
		// the commit, so reading one to the end would race the local push's check.
		if err := s.FetchBlob(ctx, repo, d.Digest); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // not upstream either: the local push answers MANIFEST_BLOB_UNKNOWN
		}
	}
	for _, d := range m.Manifests {
		if d.Digest.Validate() != nil {
			continue
		}
		_, _ = s.GetManifest(ctx, repo, d.Digest.String()) // a miss is reported by the local push
	}
	return nil
}

// isReferrersTagIndex reports whether a push is a referrers tag-schema index (tag <alg>-<hex>, an OCI
// image index), which notation and oras also write by default next to a referrer they push.
func isReferrersTagIndex(ref, mediaType string) bool {
	alg, hex, ok := strings.Cut(ref, "-")
	if !ok || mediaType != ocispec.MediaTypeImageIndex || (alg != "sha256" && alg != "sha512") || len(hex) == 0 {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hasSubject(body []byte) bool {
	var m struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	return json.Unmarshal(body, &m) == nil && m.Subject != nil && m.Subject.Digest != ""
}

// ListTags lists the upstream's tags, or the local ones when the upstream fails. Concurrent listings of
// one repository share one upstream listing, and an upstream "not found" is remembered for the
// negative-cache TTL (memo.go).
func (s *Service) ListTags(ctx context.Context, repo content.Repo, last string, n int) ([]string, error) {
	if !repo.Project.IsProxy() {
		return s.Local.ListTags(ctx, repo, last, n)
	}
	k := keyOf(refTags, repo, "")
	if s.memo.isNotFound(k) {
		return nil, errUnknownUpstream(errcode.ErrNameUnknown)
	}
	up, err := s.upstreams.Upstream(ctx, repo.Project)
	if err != nil {
		return nil, err
	}
	tags, _, upErr := s.tagLists.Do(ctx, k.flight(), func(ctx context.Context) ([]string, error) {
		if s.memo.isNotFound(k) { // a listing that ended just before this one started answers it
			return nil, &upstream.Error{Kind: upstream.NotFound, Err: errors.New("the upstream did not know the repository moments ago")}
		}
		tags, err := up.ListTags(ctx, repo.Path)
		if upstream.IsNotFound(err) {
			s.memo.setNotFound(k)
		}
		return tags, err
	})
	if upErr != nil {
		if servesLocal(upErr) {
			if local, err := s.Local.ListTags(ctx, repo, last, n); err == nil {
				return local, nil
			}
		}
		return nil, upstreamError(upErr, errcode.ErrNameUnknown)
	}
	return paginate(tags, last, n), nil
}
