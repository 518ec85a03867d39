package quota

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Group is a set of artifacts of one repository that live and die together: the connected components
// of "index lists child" and "referrer names subject" among the artifacts the repository records. A
// child listed by two indexes joins them into one group; a referrer whose subject is not recorded is a
// group of its own (with its own referrers).
type Group struct {
	ProjectID  int64
	Repository string
	// Members are the manifest digests, the oldest-pushed first.
	Members []string
	// Blobs are the blob digests (configs and layers) the members reference.
	Blobs map[string]bool
	// Children are the manifest digests the members that are indexes list, held or not.
	Children map[string]bool
	// LastUsed is the latest pull time of a member, or its push time (the time it came in) when it was
	// never pulled: a group is as recently used as its most recently used member.
	LastUsed time.Time
	// Pushed is set when a member was pushed by a client rather than pulled through: such a group is
	// never evicted (a locally pushed signature also keeps its subject). Rows of unknown origin (recorded
	// before origins were kept) count as pulled: only proxy-cache projects are evicted from.
	Pushed bool
	// Bytes is the size of the members' manifests (the blobs' sizes are known only from their links).
	Bytes int64
}

// Holds reports whether g records d as a manifest, lists it as a child or references it as a blob.
func (g *Group) Holds(d string) bool {
	return g.Blobs[d] || g.Children[d] || slices.Contains(g.Members, d)
}

// ManifestReader reads the bytes of a stored manifest.
type ManifestReader interface {
	ReadManifest(ctx context.Context, digest string) ([]byte, error)
}

// refs are what a manifest references: children of an index, config and layers of an image manifest.
type refs struct {
	children []string
	blobs    []string
}

// parseRefs reads a manifest's references; an unreadable or undecodable one references nothing (it
// still belongs to its own group).
func parseRefs(body []byte) refs {
	var doc struct {
		Config *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	var r refs
	if json.Unmarshal(body, &doc) != nil {
		return r
	}
	if doc.Config != nil && doc.Config.Digest != "" {
		r.blobs = append(r.blobs, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		r.blobs = append(r.blobs, l.Digest)
	}
	for _, m := range doc.Manifests {
		r.children = append(r.children, m.Digest)
	}
	return r
}

// buildGroups groups the artifacts (of any repositories) and returns the groups, least recently used
// first (ties: repository, then first member). Manifest bytes come from mr.
func buildGroups(ctx context.Context, mr ManifestReader, arts []*meta.CachedArtifact) ([]*Group, error) {
	byRepo := map[string][]*meta.CachedArtifact{}
	for _, a := range arts {
		byRepo[a.Repository] = append(byRepo[a.Repository], a)
	}
	var out []*Group
	for _, list := range byRepo {
		gs, err := repoGroups(ctx, mr, list)
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	slices.SortFunc(out, func(a, b *Group) int {
		return cmp.Or(a.LastUsed.Compare(b.LastUsed), cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Members[0], b.Members[0]))
	})
	return out, nil
}

// repoGroups groups the artifacts of one repository with a union-find over their digests.
func repoGroups(ctx context.Context, mr ManifestReader, arts []*meta.CachedArtifact) ([]*Group, error) {
	held := make(map[string]*meta.CachedArtifact, len(arts))
	for _, a := range arts {
		held[a.Digest] = a
	}
	parent := make(map[string]string, len(arts))
	var find func(string) string
	find = func(d string) string {
		if p, ok := parent[d]; ok && p != d {
			r := find(p)
			parent[d] = r
			return r
		}
		return d
	}
	union := func(a, b string) { parent[find(a)] = find(b) }
	blobs := make(map[string][]string, len(arts))
	children := make(map[string][]string, len(arts))
	for _, a := range arts {
		parent[a.Digest] = find(a.Digest)
		if a.Subject != "" && held[a.Subject] != nil {
			union(a.Digest, a.Subject)
		}
		body, err := mr.ReadManifest(ctx, a.Digest)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // bytes missing: the artifact still forms (or joins) a group by its subject
		}
		r := parseRefs(body)
		blobs[a.Digest], children[a.Digest] = r.blobs, r.children
		for _, c := range r.children {
			if held[c] != nil {
				union(c, a.Digest)
			}
		}
	}
	groups := map[string]*Group{}
	sorted := slices.Clone(arts)
	slices.SortFunc(sorted, func(a, b *meta.CachedArtifact) int {
		return cmp.Or(a.PushTime.Compare(b.PushTime), cmp.Compare(a.Digest, b.Digest))
	})
	var out []*Group
	for _, a := range sorted {
		root := find(a.Digest)
		g := groups[root]
		if g == nil {
			g = &Group{ProjectID: a.ProjectID, Repository: a.Repository, Blobs: map[string]bool{}, Children: map[string]bool{}}
			groups[root] = g
			out = append(out, g)
		}
		g.Members = append(g.Members, a.Digest)
		g.Bytes += a.Size
		g.Pushed = g.Pushed || a.Origin == meta.OriginPushed
		used := a.PullTime
		if used.IsZero() {
			used = a.PushTime
		}
		if used.After(g.LastUsed) {
			g.LastUsed = used
		}
		for _, b := range blobs[a.Digest] {
			g.Blobs[b] = true
		}
		for _, c := range children[a.Digest] {
			g.Children[c] = true
		}
	}
	return out, nil
}
