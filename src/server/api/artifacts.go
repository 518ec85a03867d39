package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// artifactJSON is the part of Harbor's Artifact model Berth has. media_type is the artifact's type (the
// manifest's artifactType, else its config media type; the manifest media type for an index), as
// Harbor reports the config media type there. tags and accessories are null unless asked for.
type artifactJSON struct {
	ID                int64             `json:"id"`
	Type              string            `json:"type"`
	MediaType         string            `json:"media_type"`
	ManifestMediaType string            `json:"manifest_media_type"`
	ArtifactType      string            `json:"artifact_type,omitempty"`
	ProjectID         int64             `json:"project_id"`
	RepositoryID      int64             `json:"repository_id"`
	RepositoryName    string            `json:"repository_name"`
	Digest            string            `json:"digest"`
	Size              int64             `json:"size"`
	Icon              string            `json:"icon"`
	PushTime          harborTime        `json:"push_time"`
	PullTime          harborTime        `json:"pull_time"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	References        []referenceJSON   `json:"references"`
	Tags              []tagJSON         `json:"tags"`
	Accessories       []accessoryJSON   `json:"accessories"`
	Labels            []struct{}        `json:"labels"`
}

// tagJSON is Harbor's Tag. Berth records pulls per artifact, so pull_time is the artifact's.
type tagJSON struct {
	ID           int64      `json:"id"`
	RepositoryID int64      `json:"repository_id"`
	ArtifactID   int64      `json:"artifact_id"`
	Name         string     `json:"name"`
	PushTime     harborTime `json:"push_time"`
	PullTime     harborTime `json:"pull_time"`
	Immutable    bool       `json:"immutable"`
}

// referenceJSON is Harbor's Reference: a child of an index. child_id is 0 (absent) when the child is not
// held in the repository (a proxy project pulls children on demand).
type referenceJSON struct {
	ParentID    int64             `json:"parent_id"`
	ChildID     int64             `json:"child_id,omitempty"`
	ChildDigest string            `json:"child_digest"`
	Platform    *platformJSON     `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	URLs        []string          `json:"urls"`
}

// platformJSON is Harbor's Platform; its swagger names two keys with the quotes included.
type platformJSON struct {
	Architecture string   `json:"architecture,omitempty"`
	OS           string   `json:"os,omitempty"`
	OSVersion    string   `json:"'os.version',omitempty"`
	OSFeatures   []string `json:"'os.features',omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// accessoryJSON is Harbor's Accessory: a referrer (signature, SBOM, attestation) held in the repository.
type accessoryJSON struct {
	ID                    int64      `json:"id"`
	ArtifactID            int64      `json:"artifact_id"`
	SubjectArtifactID     int64      `json:"subject_artifact_id"`
	SubjectArtifactDigest string     `json:"subject_artifact_digest"`
	SubjectArtifactRepo   string     `json:"subject_artifact_repo"`
	Size                  int64      `json:"size"`
	Digest                string     `json:"digest"`
	Type                  string     `json:"type"`
	Icon                  string     `json:"icon"`
	CreationTime          harborTime `json:"creation_time"`
}

// artifactOptions are Harbor's with_tag (default true) and with_accessory (default false).
type artifactOptions struct{ tags, accessories bool }

func parseArtifactOptions(q url.Values) (artifactOptions, error) {
	o := artifactOptions{tags: true}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"with_tag", &o.tags}, {"with_accessory", &o.accessories}} {
		if v := q.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, errcode.ErrBadRequest.WithMessage("%s must be true or false, got %q", f.name, v)
			}
			*f.dst = b
		}
	}
	if q.Get("q") != "" || q.Get("sort") != "" {
		return o, errcode.ErrBadRequest.WithMessage("q and sort are not supported on artifact lists")
	}
	return o, nil
}

// listArtifacts answers GET .../repositories/{repo}/artifacts: the artifacts without a subject, newest
// push first; page, page_size, with_tag, with_accessory; X-Total-Count and Link.
func (a *API) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	p, name, err := a.readableRepository(r)
	if err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]artifactJSON, int64, error) {
		opts, err := parseArtifactOptions(q)
		if err != nil {
			return nil, 0, err
		}
		arts, total, err := a.artifacts.ListArtifacts(r.Context(), name, pg.Offset(), pg.Size)
		if err != nil {
			return nil, 0, storeError(err, "repository "+name)
		}
		out, err := a.artifactsToJSON(r.Context(), p, arts, opts)
		return out, total, err
	})
}

// resolveArtifact finds the artifact a reference (digest or tag) names in repo.
func (a *API) resolveArtifact(ctx context.Context, repo, ref string) (*meta.Artifact, error) {
	var (
		art *meta.Artifact
		err error
	)
	if strings.Contains(ref, ":") {
		if _, perr := digest.Parse(ref); perr != nil {
			return nil, errcode.ErrBadRequest.WithMessage("invalid digest %q: %v", ref, perr)
		}
		art, err = a.artifacts.GetArtifact(ctx, repo, ref)
	} else {
		art, err = a.artifacts.ResolveTag(ctx, repo, ref)
	}
	if err != nil {
		return nil, storeError(err, "artifact "+repo+"@"+ref)
	}
	return art, nil
}

func (a *API) getArtifact(w http.ResponseWriter, r *http.Request) error {
	p, name, err := a.readableRepository(r)
	if err != nil {
		return err
	}
	opts, err := parseArtifactOptions(r.URL.Query())
	if err != nil {
		return err
	}
	art, err := a.resolveArtifact(r.Context(), name, r.PathValue("reference"))
	if err != nil {
		return err
	}
	out, err := a.artifactsToJSON(r.Context(), p, []*meta.Artifact{art}, opts)
	if err != nil {
		return err
	}
	return writeOK(w, out[0])
}

// deleteArtifact deletes the artifact a reference names, with all its tags (auth.Delete). Its referrers
// stay: the distribution spec allows referrers whose subject is gone.
func (a *API) deleteArtifact(w http.ResponseWriter, r *http.Request) error {
	p, who, name, err := a.repositoryFor(r, auth.Delete)
	if err != nil {
		return err
	}
	art, err := a.resolveArtifact(r.Context(), name, r.PathValue("reference"))
	if err != nil {
		return err
	}
	if err := a.artifacts.DeleteArtifact(r.Context(), name, art.Digest); err != nil {
		return storeError(err, "artifact "+name+"@"+art.Digest)
	}
	a.record(who, p.ID, name+"@"+art.Digest, "artifact", "delete")
	return emptyOK(w)
}

// listArtifactTags answers GET .../artifacts/{reference}/tags with page and page_size.
func (a *API) listArtifactTags(w http.ResponseWriter, r *http.Request) error {
	_, name, err := a.readableRepository(r)
	if err != nil {
		return err
	}
	pg, err := paging.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	art, err := a.resolveArtifact(r.Context(), name, r.PathValue("reference"))
	if err != nil {
		return err
	}
	tags, err := a.artifacts.ListArtifactTags(r.Context(), []int64{art.ID})
	if err != nil {
		return storeError(err, "tag")
	}
	start := min(pg.Offset(), len(tags))
	out := make([]tagJSON, 0, pg.Size)
	for _, t := range tags[start:min(start+pg.Size, len(tags))] {
		out = append(out, toTagJSON(t, art))
	}
	paging.SetHeaders(w, r, int64(len(tags)), pg)
	return writeOK(w, out)
}

func toTagJSON(t *meta.Tag, art *meta.Artifact) tagJSON {
	return tagJSON{ID: t.ID, RepositoryID: art.RepositoryID, ArtifactID: art.ID, Name: t.Name,
		PushTime: harborTime(t.PushTime), PullTime: harborTime(art.PullTime)}
}
