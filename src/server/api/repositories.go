package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// ArtifactSource is what the repository and artifact endpoints read and change. main builds it from the
// meta store (RepositoryStore), the artifact store that keeps the referrer caches in step
// (referrercache.Store) and the blob store that holds manifest bytes.
type ArtifactSource interface {
	meta.RepositoryStore
	// GetArtifact, ResolveTag and ListReferrers are meta.ArtifactStore's.
	GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error)
	ResolveTag(ctx context.Context, repo, tag string) (*meta.Artifact, error)
	ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error)
	// DeleteArtifact is meta.ArtifactStore's; it must drop the cached referrer lists it affects.
	DeleteArtifact(ctx context.Context, repo, digest string) error
	// ReadManifest returns the stored bytes of the manifest with that digest (at most 4 MiB).
	ReadManifest(ctx context.Context, digest string) ([]byte, error)
}

// repositoryJSON is Harbor's Repository model; pull_count counts manifest pulls (recorded in batches).
type repositoryJSON struct {
	ID            int64      `json:"id"`
	ProjectID     int64      `json:"project_id"`
	Name          string     `json:"name"`
	Description   string     `json:"description"`
	ArtifactCount int64      `json:"artifact_count"`
	PullCount     int64      `json:"pull_count"`
	CreationTime  harborTime `json:"creation_time"`
	UpdateTime    harborTime `json:"update_time"`
}

func toRepositoryJSON(r *meta.Repository) repositoryJSON {
	return repositoryJSON{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, ArtifactCount: r.ArtifactCount, PullCount: r.PullCount,
		CreationTime: harborTime(r.CreationTime), UpdateTime: harborTime(r.UpdateTime)}
}

// repoName returns the full repository name "<project>/<repo>" of the path. The mux has decoded the
// segment once; Harbor decodes it a second time, so %252F and %2F both mean "/".
func repoName(r *http.Request, project string) (string, error) {
	raw := r.PathValue("repo")
	name, err := url.PathUnescape(raw)
	if err != nil || name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", errcode.ErrBadRequest.WithMessage("invalid repository name %q", raw)
	}
	return project + "/" + name, nil
}

// readableRepository returns the project (readable by the caller) and the full name of the repository
// the path names. The repository itself is not looked up.
func (a *API) readableRepository(r *http.Request) (*meta.Project, string, error) {
	p, _, name, err := a.repositoryFor(r, auth.Pull)
	return p, name, err
}

// repositoryFor returns the project (on which the caller may perform act), the caller and the full name
// of the repository the path names. The repository itself is not looked up.
func (a *API) repositoryFor(r *http.Request, act auth.Action) (*meta.Project, auth.Principal, string, error) {
	p, who, err := a.projectRefFor(r, r.PathValue("project"), true, act)
	if err != nil {
		return nil, who, "", err
	}
	name, err := repoName(r, p.Name)
	return p, who, name, err
}

// listRepositories answers GET /projects/{project_name}/repositories with ?q=name=~<substring> or
// ?q=name=<full name>, ?page and ?page_size; X-Total-Count and Link.
func (a *API) listRepositories(w http.ResponseWriter, r *http.Request) error {
	p, err := a.readableProject(r, r.PathValue("project"), true)
	if err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]repositoryJSON, int64, error) {
		name, exact, err := parseFieldQuery(q.Get("q"), "name")
		if err != nil {
			return nil, 0, err
		}
		repos, total, err := a.artifacts.ListProjectRepositories(r.Context(), p.ID, name, exact, pg.Offset(), pg.Size)
		return listed(repos, total, err, "repository", toRepositoryJSON)
	})
}

func (a *API) getRepository(w http.ResponseWriter, r *http.Request) error {
	_, name, err := a.readableRepository(r)
	if err != nil {
		return err
	}
	rp, err := a.artifacts.GetRepository(r.Context(), name)
	if err != nil {
		return storeError(err, "repository "+name)
	}
	return writeOK(w, toRepositoryJSON(rp))
}

// deleteRepository removes the repository with its artifacts and tags (auth.Delete). Blob bytes stay
// on disk for garbage collection, as in Harbor.
func (a *API) deleteRepository(w http.ResponseWriter, r *http.Request) error {
	p, who, name, err := a.repositoryFor(r, auth.Delete)
	if err != nil {
		return err
	}
	if err := a.artifacts.DeleteRepository(r.Context(), name); err != nil {
		return storeError(err, "repository "+name)
	}
	a.record(who, p.ID, name, "repository", "delete")
	return emptyOK(w)
}
