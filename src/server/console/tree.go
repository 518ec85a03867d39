package console

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/api"
)

// Bounds of one referrers tree: nesting depth, nodes in all, and pages read per subject.
const (
	treeDepth = 3
	treeNodes = 100
	treePages = 10
)

// refNode is one referrer in the tree, as `oras discover --format tree` shows it.
type refNode struct {
	Digest       string
	ArtifactType string
	Accessory    string // Harbor's accessory type: signature.cosign, signature.notation, sbom.harbor, ...
	Size         int64
	Annotations  map[string]string
	// Source says where the entry came from: "local" when Berth holds the referrer in the project
	// (pushed, or pulled through), "upstream" when only the upstream's answer listed it.
	Source   string
	Children *refLevel
}

// refLevel is the referrers of one subject.
type refLevel struct {
	Nodes []*refNode
	// Cache is the X-Cache value the referrers API sends for this subject (HIT, MISS, STALE, LOCAL), ""
	// when the project does not proxy referrers.
	Cache     string
	Error     string // why the list could not be read; Nodes are empty then
	Truncated bool   // the tree bounds cut the list short
}

// treeResult is the tree of an artifact plus how it was produced.
type treeResult struct {
	Root    *refLevel
	Proxied bool // the project is a proxy-cache project with the Proxy Referrer API on
}

// referrersTree reads the referrers of subject, and theirs, through the same content.Referrers
// service as GET /v2/<name>/referrers/<digest>: for a proxy project with the toggle on, that is the
// Proxy Referrer API (upstream merged with local, cached).
func (c *Console) referrersTree(ctx context.Context, p *meta.Project, name, path string, subject digest.Digest) treeResult {
	repo := content.Repo{Project: p, Name: name, Path: path}
	budget := treeNodes
	return treeResult{Root: c.level(ctx, repo, subject, treeDepth, &budget), Proxied: p.ProxyReferrerAPI()}
}

func (c *Console) level(ctx context.Context, repo content.Repo, subject digest.Digest, depth int, budget *int) *refLevel {
	lv := &refLevel{}
	q := content.ReferrersQuery{}
	for range treePages {
		page, err := c.d.Referrers.ListReferrers(ctx, repo, subject, q)
		if err != nil {
			c.d.Log.Warn("console: reading referrers", "repo", repo.Name, "subject", subject, "err", err)
			lv.Error = describe(err)
			return lv
		}
		if lv.Cache == "" {
			lv.Cache = page.Cache
		}
		for _, d := range page.Manifests {
			if *budget <= 0 {
				lv.Truncated = true
				return lv
			}
			*budget--
			n := &refNode{Digest: d.Digest.String(), ArtifactType: d.ArtifactType, Accessory: api.AccessoryType(d.ArtifactType),
				Size: d.Size, Annotations: d.Annotations, Source: "upstream"}
			if held, err := c.d.Artifacts.GetArtifact(ctx, repo.Name, n.Digest); err == nil && held.Subject == subject.String() {
				n.Source = "local"
			}
			if depth > 1 {
				if sub := c.level(ctx, repo, d.Digest, depth-1, budget); len(sub.Nodes) > 0 || sub.Error != "" {
					n.Children = sub
				}
			}
			lv.Nodes = append(lv.Nodes, n)
		}
		if page.Next == "" {
			return lv
		}
		q.Last = page.Next
	}
	lv.Truncated = true
	return lv
}

// describe returns the message of an error fit for the page.
func describe(err error) string {
	if e := errcode.As(err); e != nil {
		if e.Message != "" {
			return e.Message
		}
		return e.Code.Message
	}
	return "the referrers could not be read"
}
