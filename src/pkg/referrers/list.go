package referrers

import (
	"context"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// ListReferrers answers a referrers request
// (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers).
// Projects without the toggle get the local answer. Every referrers request passes here, so this is
// where the client's parameters are checked: an artifactType longer than meta.MaxArtifactTypeLength is
// refused (400 BAD_REQUEST) before it reaches a cache key, a map or an upstream.
func (c *Controller) ListReferrers(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) (*content.ReferrersPage, error) {
	if err := checkQuery(q); err != nil {
		return nil, err
	}
	if !repo.Project.ProxyReferrerAPI() {
		c.count(repo, "OFF")
		return c.local.ListReferrers(ctx, repo, subject, q)
	}
	if q.Last != "" { // a bad cursor is refused before anything is asked
		if _, _, err := parseCursor(q.Last); err != nil {
			return nil, err
		}
	}
	local, pulled, err := c.localDescriptors(ctx, repo, subject)
	if err != nil {
		return nil, err
	}
	f := c.upstream(ctx, repo, subject, q)
	var remote []ocispec.Descriptor
	status := f.status
	switch {
	case f.entry != nil:
		remote = f.entry.manifests
		local = dropDeletedUpstream(local, pulled, remote)
	case f.err != nil && upstream.IsNotFound(f.err):
		// The upstream does not know the subject or repository: the answer is what Berth holds,
		// never a 404 that would hide it.
		status = content.CacheMiss
	case f.err != nil:
		if len(local) == 0 && !c.pushedHere(ctx, repo, subject) {
			c.count(repo, "ERROR")
			return nil, upstream.ClientError(f.err, errcode.ErrNameUnknown)
		}
		c.log.WarnContext(ctx, "upstream referrers unavailable; serving local referrers", "repository", repo.Name, "subject", subject, "err", f.err)
		status = content.CacheLocal
	}
	list := filter(merge(local, remote), q.ArtifactType)
	p, next, err := page(list, q.Last, c.pages.Size(q.N))
	if err != nil {
		return nil, err
	}
	out := &content.ReferrersPage{Manifests: p, Next: next, Cache: status}
	if f.entry != nil && sameList(p, f.entry.manifests) {
		// The page is the cached list itself (nothing local, no filter, one page): its encoding is kept
		// on the entry, made once.
		out.Encoded = f.entry.encodedIndex()
	}
	if q.ArtifactType != "" {
		out.FiltersApplied = []string{"artifactType"}
	}
	c.count(repo, status)
	return out, nil
}

// pushedHere reports whether subject is held in repo only because a client pushed it there (never
// pulled through). Its referrers cannot be the upstream's, so while the upstream is down the local list,
// even an empty one, is the true answer (LOCAL). A subject that came from the upstream, or whose origin
// is unknown, may have upstream referrers: an empty list would be false, and the upstream failure is
// reported instead.
func (c *Controller) pushedHere(ctx context.Context, repo content.Repo, subject digest.Digest) bool {
	a, err := c.index.GetArtifact(ctx, repo.Name, subject.String())
	return err == nil && a.Origin == meta.OriginPushed
}

// checkQuery refuses parameters no valid request carries.
func checkQuery(q content.ReferrersQuery) error {
	if n := len(q.ArtifactType); n > meta.MaxArtifactTypeLength {
		return errcode.ErrBadRequest.WithMessage("artifactType is %d bytes long; a media type has at most %d", n, meta.MaxArtifactTypeLength)
	}
	return nil
}

func (c *Controller) count(repo content.Repo, status string) {
	if c.metrics != nil {
		c.metrics.ReferrersRequests.WithLabelValues(c.metrics.ProjectLabel(repo.Project.Name, repo.Project.Public()), status).Inc()
	}
}

// sameList reports whether a and b are the same slice (same backing array, same length).
func sameList(a, b []ocispec.Descriptor) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
