package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/api"
)

// artifactPageSize is how many artifacts a repository page lists.
const artifactPageSize = 100

// artifactRow is an artifact with its tags and, for an index, its children's platforms.
type artifactRow struct {
	*meta.Artifact
	Tags      []string
	Platforms []platformRow
	Index     bool
}

type platformRow struct {
	Platform string // os/architecture[/variant]
	Digest   string
}

// readableRepo returns the project the caller may read (readable) and the full name and the path
// (after the project) of the repository the query parameter param names.
func (c *Console) readableRepo(q *request, param string) (p *meta.Project, name, path string, err error) {
	if p, err = c.readable(q); err != nil {
		return nil, "", "", err
	}
	path = strings.Trim(q.r.URL.Query().Get(param), "/")
	if path == "" || strings.Contains(path, "//") {
		return nil, "", "", errcode.ErrBadRequest.WithMessage("a repository name is required")
	}
	return p, p.Name + "/" + path, path, nil
}

// showRepository lists a repository's artifacts, newest push first, a page at a time.
func (c *Console) showRepository(q *request) error {
	p, name, path, err := c.readableRepo(q, "name")
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	pg := pageNumber(q.r)
	arts, total, err := c.d.Artifacts.ListArtifacts(ctx, name, (pg-1)*artifactPageSize, artifactPageSize)
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.ErrNotFound.WithMessage("repository %s not found", name)
	}
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "listing artifacts")
	}
	rows, err := c.artifactRows(ctx, arts)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "repository", map[string]any{"Title": "Repository " + name, "Project": p,
		"Repo": name, "RepoPath": path, "Artifacts": rows, "Pager": newPager(q.r, pg, artifactPageSize, total)})
	return nil
}

// artifactRows adds tags (one query) and index platforms (from the stored index) to artifacts.
func (c *Console) artifactRows(ctx context.Context, arts []*meta.Artifact) ([]artifactRow, error) {
	ids := make([]int64, len(arts))
	for i, a := range arts {
		ids[i] = a.ID
	}
	tags, err := c.d.Artifacts.ListArtifactTags(ctx, ids)
	if err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "listing tags")
	}
	byArtifact := map[int64][]string{}
	for _, t := range tags {
		byArtifact[t.ArtifactID] = append(byArtifact[t.ArtifactID], t.Name)
	}
	rows := make([]artifactRow, len(arts))
	for i, a := range arts {
		rows[i] = artifactRow{Artifact: a, Tags: byArtifact[a.ID], Index: api.IsIndex(a.MediaType)}
		if rows[i].Index {
			if rows[i].Platforms, err = c.platforms(ctx, a.Digest); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

// platforms lists the children of a stored index with their platforms.
func (c *Console) platforms(ctx context.Context, d string) ([]platformRow, error) {
	body, err := c.d.Artifacts.ReadManifest(ctx, d)
	if err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "reading index %s", d)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "decoding index %s", d)
	}
	out := make([]platformRow, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		pl := "unknown"
		if p := m.Platform; p != nil {
			pl = p.OS + "/" + p.Architecture
			if p.Variant != "" {
				pl += "/" + p.Variant
			}
		}
		out = append(out, platformRow{Platform: pl, Digest: m.Digest.String()})
	}
	return out, nil
}

// showArtifact shows one artifact (?repo, ?digest): details, platforms, the pull command and the
// referrers tree.
func (c *Console) showArtifact(q *request) error {
	p, name, path, err := c.readableRepo(q, "repo")
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	d, err := parseDigest(q.r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	a, err := c.d.Artifacts.GetArtifact(ctx, name, d.String())
	if err != nil {
		return artifactError(err, name, d, "reading artifact")
	}
	rows, err := c.artifactRows(ctx, []*meta.Artifact{a})
	if err != nil {
		return err
	}
	tree := c.referrersTree(ctx, p, name, path, d)
	c.render(q, http.StatusOK, "artifact", map[string]any{"Title": "Artifact " + shortDigest(d.String()),
		"Project": p, "Repo": name, "RepoPath": path, "A": rows[0], "Tree": tree,
		"Pull": q.r.Host + "/" + name + "@" + d.String()})
	return nil
}

// deleteArtifact deletes an artifact with its tags (auth.Delete), as DELETE .../artifacts/{digest} does.
func (c *Console) deleteArtifact(q *request) error {
	p, err := c.projectFor(q, auth.Delete)
	if err != nil {
		return err
	}
	f := q.r.PostForm
	name := p.Name + "/" + strings.Trim(f.Get("repo"), "/")
	d, err := parseDigest(f.Get("digest"))
	if err != nil {
		return err
	}
	if err := c.d.Artifacts.DeleteArtifact(q.r.Context(), name, d.String()); err != nil {
		return artifactError(err, name, d, "deleting artifact")
	}
	return redirect(q, "/projects/"+p.Name+"/repository?name="+urlQueryEscape(strings.TrimPrefix(name, p.Name+"/")))
}

// parseDigest reads the digest a form or query value v names; a malformed one is BAD_REQUEST.
func parseDigest(v string) (digest.Digest, error) {
	d, err := digest.Parse(v)
	if err != nil {
		return "", errcode.ErrBadRequest.WithMessage("invalid digest %q", v)
	}
	return d, nil
}

// artifactError maps a store error about the artifact name@d: a missing artifact is NOT_FOUND, anything
// else INTERNAL_SERVER_ERROR wrapped with doing.
func artifactError(err error, name string, d digest.Digest, doing string) error {
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.ErrNotFound.WithMessage("artifact %s@%s not found", name, d)
	}
	return errcode.ErrInternal.Wrap(err, "%s", doing)
}
