package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// Remover removes a group of artifacts from its repository. It is the seam where a lifecycle package
// with its own cascade rules can take over.
type Remover interface {
	// Remove deletes g's manifests from g.Repository, then the repository's links to the blobs g
	// referenced that no artifact left in the repository references. It returns every digest (manifests
	// and blobs) the repository no longer records or links; their bytes may now be unreferenced, which
	// the caller checks before deleting them. An artifact already gone is not an error.
	Remove(ctx context.Context, g *Group) ([]string, error)
}

// MetaRemover is the built-in Remover: it deletes through the meta roles. Artifacts should be the
// caching wrapper main hands to the content service, so that cached reads of the removed manifests end.
type MetaRemover struct {
	Artifacts meta.ArtifactStore
	Links     meta.BlobLinkStore
	Store     meta.QuotaStore
	Manifests ManifestReader
}

var _ Remover = (*MetaRemover)(nil)

// Remove implements Remover. What the rest of the repository still references is read first, so a
// manifest that cannot be read stops the removal before anything is deleted. Then referrers go before
// their subjects and indexes before their children (newest-pushed first), so that a removal cut short
// leaves no dangling reference behind, and the blob links last.
func (r *MetaRemover) Remove(ctx context.Context, g *Group) ([]string, error) {
	keep, err := r.stillReferenced(ctx, g)
	if err != nil {
		return nil, err
	}
	var gone []string
	for i := len(g.Members) - 1; i >= 0; i-- {
		d := g.Members[i]
		err := r.Artifacts.DeleteArtifact(ctx, g.Repository, d)
		if err != nil && !errors.Is(err, meta.ErrNotFound) {
			return gone, fmt.Errorf("evict %s@%s: %w", g.Repository, d, err)
		}
		gone = append(gone, d)
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

// stillReferenced returns the blobs the artifacts of g's repository outside g reference.
func (r *MetaRemover) stillReferenced(ctx context.Context, g *Group) (map[string]bool, error) {
	arts, err := r.Store.ListCachedArtifacts(ctx, g.ProjectID)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, a := range arts {
		if a.Repository != g.Repository || slices.Contains(g.Members, a.Digest) {
			continue
		}
		body, err := r.Manifests.ReadManifest(ctx, a.Digest)
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
