package gc

import (
	"context"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// deleteUntagged deletes, per repository, the untagged artifacts that nothing tagged keeps, as Harbor's
// delete_untagged does, with two rules Harbor users asked for: the children of a kept index are kept,
// and so are the referrers (signatures, SBOMs: accessories) of a kept artifact, and theirs in turn. An
// untagged index or subject that goes takes its untagged children and referrers with it. Only
// artifacts pushed before the cutoff go: the children of an index being pushed arrive untagged first.
func (r *run) deleteUntagged(ctx context.Context) error {
	arts, err := r.allArtifacts(ctx)
	if err != nil {
		return err
	}
	byRepo := map[int64][]meta.GCArtifact{}
	for _, a := range arts {
		byRepo[a.RepositoryID] = append(byRepo[a.RepositoryID], a)
	}
	for _, list := range byRepo {
		if err := r.deleteUntaggedIn(ctx, list); err != nil {
			return err
		}
	}
	return nil
}

// repoGraph is one repository's artifacts and what keeps what.
type repoGraph struct {
	byDigest map[string]*meta.GCArtifact
	// keepers holds digest -> the digests of artifacts that keep it (indexes listing it, its subject).
	keepers map[string][]string
	// kept holds digest -> the digests it keeps (its children and its referrers).
	kept map[string][]string
}

func (r *run) graph(ctx context.Context, list []meta.GCArtifact) *repoGraph {
	g := &repoGraph{byDigest: map[string]*meta.GCArtifact{}, keepers: map[string][]string{}, kept: map[string][]string{}}
	for i := range list {
		g.byDigest[list[i].Digest] = &list[i]
	}
	link := func(keeper, d string) {
		if _, ok := g.byDigest[d]; ok && d != keeper {
			g.keepers[d] = append(g.keepers[d], keeper)
			g.kept[keeper] = append(g.kept[keeper], d)
		}
	}
	for _, a := range list {
		if a.Subject != "" {
			link(a.Subject, a.Digest)
		}
		if !isIndex(a.MediaType) {
			continue
		}
		refs, err := r.references(ctx, a.Digest)
		if err != nil {
			// Unknown children: keep the index itself, and so everything it may list.
			r.log.Printf("WARNING: cannot read index %s@%s (%v): it is kept", a.Repository, a.Digest, err)
			g.byDigest[a.Digest].Tagged = true
			continue
		}
		for _, c := range refs {
			link(a.Digest, c)
		}
	}
	return g
}

func isIndex(mt string) bool {
	return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// deleteUntaggedIn deletes one repository's dead artifacts, keepers before what they keep; an artifact
// whose delete is refused (tagged, pinned or pushed meanwhile) keeps what it keeps.
func (r *run) deleteUntaggedIn(ctx context.Context, list []meta.GCArtifact) error {
	g := r.graph(ctx, list)
	live := map[string]bool{}
	var queue []string
	for d, a := range g.byDigest {
		if a.Tagged || !a.PushTime.Before(r.cutoff) {
			live[d] = true
			queue = append(queue, d)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, k := range g.kept[d] {
			if !live[k] {
				live[k] = true
				queue = append(queue, k)
			}
		}
	}
	// gone: true when deleted, false when its delete was refused; absent while undecided.
	gone := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for d, a := range g.byDigest {
			if live[d] {
				continue
			}
			if _, decided := gone[d]; decided {
				continue
			}
			ready, refused := true, false
			for _, k := range g.keepers[d] {
				del, decided := gone[k]
				ready = ready && decided
				refused = refused || (decided && !del)
			}
			if !ready {
				continue
			}
			progress = true
			if refused {
				gone[d] = false
				continue
			}
			ok, err := r.deleteArtifact(ctx, a)
			if err != nil {
				return err
			}
			gone[d] = ok
		}
	}
	return nil
}

func (r *run) deleteArtifact(ctx context.Context, a *meta.GCArtifact) (bool, error) {
	if r.p.DryRun {
		r.log.Printf("dry run: would delete untagged artifact %s@%s", a.Repository, a.Digest)
		r.res.ArtifactsDeleted++
		return true, nil
	}
	ok, err := r.c.store.DeleteUntaggedArtifact(ctx, a.ID, a.Digest, r.cutoff)
	if err != nil {
		return false, err
	}
	if ok {
		r.log.Printf("deleted untagged artifact %s@%s", a.Repository, a.Digest)
		r.res.ArtifactsDeleted++
	} else {
		r.log.Printf("kept artifact %s@%s: tagged, pinned or pushed meanwhile", a.Repository, a.Digest)
	}
	return ok, nil
}
