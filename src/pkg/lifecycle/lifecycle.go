// Package lifecycle removes artifacts with what must go with them, in one place for every caller
// (retention, and eviction under quota or disk pressure):
//
//   - an image index and its children live and die together: removing an index removes each child that
//     is not tagged itself and that no index kept in the repository still lists;
//   - a subject takes its referrers with it (recursively: the signature of an SBOM of an image). Referrers
//     pulled through from the upstream go silently; referrers pushed here (signatures, SBOMs the
//     organisation added) would dangle without their subject, so they go too and each is logged.
//
// Only metadata rows are removed (artifact, its tags and referrer index entry); blob bytes and links stay
// for the garbage collector.
package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// maxIndexBytes caps the index bodies read to find children (as content.MaxManifestSize).
const maxIndexBytes = 4 << 20

// Reasons an artifact is removed (Removal.Reason).
const (
	ReasonSelected       = "selected"                 // a target of Remove
	ReasonChild          = "child of a removed index" // cascade from an index
	ReasonReferrer       = "referrer of a removed subject, pulled through"
	ReasonPushedReferrer = "referrer of a removed subject, pushed here"
)

// Manifests opens stored manifest bytes by digest.
type Manifests = storage.BlobReader

// Repo is the state of one repository that removals are planned against.
type Repo struct {
	Name      string
	Artifacts []*meta.Artifact   // every artifact, referrers and children included
	Tags      map[int64][]string // artifact ID -> tags
	byDigest  map[string]*meta.Artifact
	children  map[string][]string // index digest -> digests of its children held in the repository
	parents   map[string][]string // child digest -> indexes held that list it
	referrers map[string][]string // subject digest -> referrer digests
}

// Artifact returns the artifact with that digest, or nil.
func (r *Repo) Artifact(d string) *meta.Artifact { return r.byDigest[d] }

// Children returns the digests of the held children of index d.
func (r *Repo) Children(d string) []string { return r.children[d] }

// IsChild reports whether d is listed by an index held in the repository.
func (r *Repo) IsChild(d string) bool { return len(r.parents[d]) > 0 }

// Lister lists a project's artifacts (meta.LifecycleStore has it).
type Lister interface {
	// ListProjectArtifacts is meta.LifecycleStore's.
	ListProjectArtifacts(ctx context.Context, projectID int64, repo string) ([]*meta.Artifact, map[int64][]string, error)
}

// Load reads every repository of the project (or only repo when repo != "") and the index bodies.
func Load(ctx context.Context, store Lister, manifests Manifests, projectID int64, repo string) ([]*Repo, error) {
	arts, tags, err := store.ListProjectArtifacts(ctx, projectID, repo)
	if err != nil {
		return nil, err
	}
	var out []*Repo
	for i := 0; i < len(arts); {
		j := i
		for j < len(arts) && arts[j].Repository == arts[i].Repository {
			j++
		}
		r, err := newRepo(ctx, manifests, arts[i].Repository, arts[i:j], tags)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		i = j
	}
	return out, nil
}

func newRepo(ctx context.Context, manifests Manifests, name string, arts []*meta.Artifact, tags map[int64][]string) (*Repo, error) {
	r := &Repo{Name: name, Artifacts: arts, Tags: map[int64][]string{}, byDigest: map[string]*meta.Artifact{},
		children: map[string][]string{}, parents: map[string][]string{}, referrers: map[string][]string{}}
	for _, a := range arts {
		r.byDigest[a.Digest] = a
		if t := tags[a.ID]; len(t) > 0 {
			r.Tags[a.ID] = t
		}
	}
	for _, a := range arts {
		if a.Subject != "" {
			r.referrers[a.Subject] = append(r.referrers[a.Subject], a.Digest)
		}
		if !isIndex(a.MediaType) {
			continue
		}
		kids, err := indexChildren(ctx, manifests, a)
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			if _, held := r.byDigest[k]; held && !slices.Contains(r.children[a.Digest], k) {
				r.children[a.Digest] = append(r.children[a.Digest], k)
				r.parents[k] = append(r.parents[k], a.Digest)
			}
		}
	}
	return r, nil
}

func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// indexChildren reads the digests an index lists. An index whose bytes are gone lists nothing.
func indexChildren(ctx context.Context, manifests Manifests, a *meta.Artifact) ([]string, error) {
	d, err := digest.Parse(a.Digest)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: artifact %s@%s: %w", a.Repository, a.Digest, err)
	}
	rc, err := manifests.Open(ctx, d)
	if err != nil {
		return nil, nil //nolint:nilerr // bytes missing: no children to cascade to
	}
	defer func() { _ = rc.Close() }()
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, maxIndexBytes)).Decode(&idx); err != nil {
		return nil, fmt.Errorf("lifecycle: index %s@%s: %w", a.Repository, a.Digest, err)
	}
	out := make([]string, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		out = append(out, m.Digest)
	}
	return out, nil
}

// Removal is one artifact to remove and why; Cause is the digest it goes with ("" for a target).
type Removal struct {
	Artifact *meta.Artifact
	Tags     []string
	Reason   string
	Cause    string
}

// Plan returns what removing targets (digests in r) takes with it, in removal order: every referrer
// before its subject (so none is ever listed without its subject) and every index before its children
// (so no index is ever served without a child), targets included. Targets not held are ignored.
func Plan(r *Repo, targets []string) []Removal {
	gone := map[string]bool{}
	var refs, tops, kids []Removal
	add := func(d, reason, cause string) bool {
		a := r.byDigest[d]
		if a == nil || gone[d] {
			return false
		}
		gone[d] = true
		rm := Removal{Artifact: a, Tags: r.Tags[a.ID], Reason: reason, Cause: cause}
		switch reason {
		case ReasonSelected:
			tops = append(tops, rm)
		case ReasonChild:
			kids = append(kids, rm)
		default:
			refs = append(refs, rm)
		}
		return true
	}
	for _, d := range targets {
		add(d, ReasonSelected, "")
	}
	for changed := true; changed; { // to a fixed point: a child shared by two removed indexes, referrers of referrers
		changed = false
		for d := range gone {
			for _, k := range r.children[d] {
				if !gone[k] && len(r.Tags[r.byDigest[k].ID]) == 0 && allIn(r.parents[k], gone) {
					changed = add(k, ReasonChild, d) || changed
				}
			}
			for _, ref := range r.referrers[d] {
				reason := ReasonReferrer
				if r.byDigest[ref].Origin != meta.OriginPulled {
					reason = ReasonPushedReferrer
				}
				changed = add(ref, reason, d) || changed
			}
		}
	}
	slices.Reverse(refs) // deepest referrers first
	return ordered(r, slices.Concat(refs, tops, kids))
}

// ordered returns plan with each artifact after the referrers and the indexes of plan that name it, so
// that the order holds among targets too (an eviction targets a whole group: index, children, referrers),
// otherwise keeping plan's order.
func ordered(r *Repo, plan []Removal) []Removal {
	pos := make(map[string]int, len(plan))
	for i, p := range plan {
		pos[p.Artifact.Digest] = i
	}
	out := make([]Removal, 0, len(plan))
	done := make(map[string]bool, len(plan))
	var visit func(d string)
	visit = func(d string) {
		if done[d] {
			return
		}
		done[d] = true // before its predecessors: a cycle (impossible with digests) cannot loop
		for _, before := range slices.Concat(r.referrers[d], r.parents[d]) {
			if _, in := pos[before]; in {
				visit(before)
			}
		}
		out = append(out, plan[pos[d]])
	}
	for _, p := range plan {
		visit(p.Artifact.Digest)
	}
	return out
}

func allIn(ds []string, set map[string]bool) bool {
	for _, d := range ds {
		if !set[d] {
			return false
		}
	}
	return true
}

// Deleter deletes one artifact's row (meta.ArtifactStore and its caching wrappers satisfy it).
type Deleter interface {
	DeleteArtifact(ctx context.Context, repo, digest string) error
}

// Remover removes planned artifacts.
type Remover struct {
	store Deleter
	log   *slog.Logger
}

// NewRemover returns a Remover deleting through store (pass the caching wrappers, so this node's
// caches forget what is removed).
func NewRemover(store Deleter, log *slog.Logger) *Remover {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Remover{store: store, log: log}
}

// Remove deletes the removals of one repository in order, as Plan returned them. An artifact already
// gone (a concurrent delete) counts as removed. Each pushed referrer removed is logged. It stops at the
// first other failure and returns how many were removed.
func (rm *Remover) Remove(ctx context.Context, repo string, plan []Removal) (int, error) {
	for i, p := range plan {
		if p.Reason == ReasonPushedReferrer {
			rm.log.InfoContext(ctx, "removing a referrer pushed here with its subject", "repository", repo,
				"digest", p.Artifact.Digest, "artifact_type", p.Artifact.ArtifactType, "subject", p.Cause)
		}
		if err := rm.store.DeleteArtifact(ctx, repo, p.Artifact.Digest); err != nil && !errors.Is(err, meta.ErrNotFound) {
			return i, fmt.Errorf("lifecycle: remove %s@%s: %w", repo, p.Artifact.Digest, err)
		}
	}
	return len(plan), nil
}
