package quota

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// Remover removes a group of artifacts from its repository (MetaRemover, by lifecycle's rule; tests wrap
// it).
type Remover interface {
	// Remove deletes g's manifests from g.Repository, then the repository's links to the blobs g
	// referenced that no artifact left in the repository references. It returns every digest (manifests
	// and blobs) the repository no longer records or links; their bytes may now be unreferenced, which
	// the caller checks before deleting them. An artifact already gone is not an error.
	Remove(ctx context.Context, g *Group) ([]string, error)
}

// MetaRemover is the built-in Remover. The artifacts go by lifecycle's rule, the one retention uses
// too (lifecycle.Plan and lifecycle.Remover: an index with its children, a subject with its referrers,
// pushed referrers logged); then the repository's links to the blobs they referenced that nothing left
// in the repository references, so that their bytes can be swept at once. Remover should delete
// through the caching wrapper main hands to the content service, so that cached reads of the removed
// manifests end.
type MetaRemover struct {
	Artifacts lifecycle.Lister
	Links     meta.BlobLinkStore
	Store     meta.QuotaStore
	Blobs     storage.BlobReader
	Remover   *lifecycle.Remover
}

var _ Remover = (*MetaRemover)(nil)

// Remove implements Remover. The repository is read first (its artifacts, and the manifests of those
// that stay, for the blobs they keep), so a manifest that cannot be read stops the removal before
// anything is deleted. Then the artifacts go in lifecycle's order (referrers before their subjects,
// indexes before their children, so that a removal cut short leaves no dangling reference behind), and
// the blob links last.
func (r *MetaRemover) Remove(ctx context.Context, g *Group) ([]string, error) {
	repos, err := lifecycle.Load(ctx, r.Artifacts, r.Blobs, g.ProjectID, g.Repository)
	if err != nil || len(repos) == 0 {
		return nil, err
	}
	plan := lifecycle.Plan(repos[0], g.Members)
	keep, err := r.stillReferenced(ctx, repos[0], plan)
	if err != nil {
		return nil, err
	}
	n, err := r.Remover.Remove(ctx, g.Repository, plan)
	gone := make([]string, 0, n)
	for _, p := range plan[:n] {
		gone = append(gone, p.Artifact.Digest)
	}
	if err != nil {
		return gone, err
	}
	links, err := r.Store.ListBlobLinks(ctx, g.Repository)
	if err != nil {
		return gone, err
	}
	for _, l := range links {
		if !g.Blobs[l.Digest] || keep[l.Digest] {
			continue // not the group's (an upload in progress, another image's), or still in use
		}
		err := r.Links.UnlinkBlob(ctx, g.Repository, l.Digest)
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return gone, fmt.Errorf("evict blob %s@%s: %w", g.Repository, l.Digest, err)
		}
		gone = append(gone, l.Digest)
	}
	return gone, nil
}

// stillReferenced returns the blobs the artifacts of repo that plan leaves reference.
func (r *MetaRemover) stillReferenced(ctx context.Context, repo *lifecycle.Repo, plan []lifecycle.Removal) (map[string]bool, error) {
	going := make(map[string]bool, len(plan))
	for _, p := range plan {
		going[p.Artifact.Digest] = true
	}
	mr := StorageManifests{Blobs: r.Blobs}
	keep := map[string]bool{}
	for _, a := range repo.Artifacts {
		if going[a.Digest] {
			continue
		}
		body, err := mr.ReadManifest(ctx, a.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s@%s to keep its blobs: %w", a.Repository, a.Digest, err)
		}
		for _, b := range parseRefs(body).blobs {
			keep[b] = true
		}
	}
	return keep, nil
}

// StorageManifests reads manifest bytes from the blob store (manifests are stored there by digest).
type StorageManifests struct{ Blobs storage.BlobReader }

// ReadManifest reads at most 4 MiB, the largest manifest accepted.
func (s StorageManifests) ReadManifest(ctx context.Context, dgst string) ([]byte, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return nil, err
	}
	b, err := s.Blobs.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer func() { _ = b.Close() }()
	if b.Size() > content.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s is %d bytes", d, b.Size())
	}
	body := make([]byte, b.Size())
	if _, err := io.ReadFull(b, body); err != nil {
		return nil, err
	}
	return body, nil
}
