package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.RepositoryStore = (*store)(nil)

type repositoryRow struct {
	ID            int64  `orm:"column(id)"`
	ProjectID     int64  `orm:"column(project_id)"`
	Name          string `orm:"column(name)"`
	ArtifactCount int64  `orm:"column(artifact_count)"`
	PullCount     int64  `orm:"column(pull_count)"`
	CreationTime  int64  `orm:"column(creation_time)"`
	UpdateTime    int64  `orm:"column(update_time)"`
}

// repositoryCols selects a repositoryRow from repository r; the counts use the artifact table's
// (repository_id, digest) unique index.
const repositoryCols = `r.id AS id, r.project_id AS project_id, r.name AS name, r.creation_time AS creation_time, r.pull_count AS pull_count,
	(SELECT COUNT(*) FROM artifact a WHERE a.repository_id = r.id AND a.subject_digest IS NULL) AS artifact_count,
	COALESCE((SELECT MAX(a.push_time) FROM artifact a WHERE a.repository_id = r.id), r.creation_time) AS update_time`

func (r *repositoryRow) repository() *meta.Repository {
	return &meta.Repository{
		ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, ArtifactCount: r.ArtifactCount, PullCount: r.PullCount,
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime),
	}
}

// ListProjectRepositories matches name as a case-insensitive substring of the full name, or exactly.
func (s *store) ListProjectRepositories(ctx context.Context, projectID int64, name string, exact bool, offset, limit int) ([]*meta.Repository, int64, error) {
	where, args := ` WHERE r.project_id = ?`, []any{projectID}
	switch {
	case name != "" && exact:
		where, args = where+` AND r.name = ?`, append(args, name)
	case name != "":
		where, args = where+` AND `+containsCond("r.name"), append(args, likeContains(name))
	}
	return listPage(ctx, s, listQuery{what: fmt.Sprintf("repositories of project %d", projectID), cols: repositoryCols,
		from: "repository r", where: where, args: args, order: ` ORDER BY r.name`}, offset, limit, pure((*repositoryRow).repository))
}

func (s *store) GetRepository(ctx context.Context, name string) (*meta.Repository, error) {
	return getRow(ctx, s.r, "repository "+name, pure((*repositoryRow).repository),
		`SELECT `+repositoryCols+` FROM repository r WHERE r.name = ?`, name)
}

// ListArtifacts reads the repository first, so an unknown repository is ErrNotFound, not an empty list.
func (s *store) ListArtifacts(ctx context.Context, repo string, offset, limit int) ([]*meta.Artifact, int64, error) {
	r, err := s.GetRepository(ctx, repo)
	if err != nil {
		return nil, 0, err
	}
	page, args := s.d.limitOffset(limit, offset, []any{r.ID})
	var rows []artifactRow
	if _, err := queryRows(ctx, s.r, &rows,
		`SELECT `+artifactCols+` FROM repository r JOIN artifact a ON a.repository_id = r.id
		 WHERE r.id = ? AND a.subject_digest IS NULL ORDER BY a.push_time DESC, a.id DESC`+page, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: list artifacts of %s: %w", repo, err)
	}
	out, err := convertRows(rows, (*artifactRow).artifact)
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list artifacts of %s: %w", repo, err)
	}
	return out, r.ArtifactCount, nil
}

// maxTagQuery bounds the IDs in one IN list (SQLite allows 32766 parameters, PostgreSQL 65535).
const maxTagQuery = 1000

func (s *store) ListArtifactTags(ctx context.Context, artifactIDs []int64) ([]*meta.Tag, error) {
	type tagRow struct {
		ID         int64  `orm:"column(id)"`
		ArtifactID int64  `orm:"column(artifact_id)"`
		Name       string `orm:"column(name)"`
		PushTime   int64  `orm:"column(push_time)"`
	}
	out := []*meta.Tag{}
	for len(artifactIDs) > 0 {
		batch := artifactIDs[:min(len(artifactIDs), maxTagQuery)]
		artifactIDs = artifactIDs[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		var rows []tagRow
		if _, err := queryRows(ctx, s.r, &rows,
			`SELECT id, artifact_id, name, push_time FROM tag WHERE artifact_id IN (?`+
				strings.Repeat(", ?", len(batch)-1)+`) ORDER BY artifact_id, name`, args...); err != nil {
			return nil, fmt.Errorf("meta: list tags of %d artifacts: %w", len(batch), err)
		}
		for _, r := range rows {
			out = append(out, &meta.Tag{ID: r.ID, ArtifactID: r.ArtifactID, Name: r.Name, PushTime: fromDBTime(r.PushTime)})
		}
	}
	return out, nil
}

// DeleteRepository is one statement: artifacts, tags and blob links go with the row (ON DELETE CASCADE).
func (s *store) DeleteRepository(ctx context.Context, name string) error {
	n, err := exec(ctx, s.w, `DELETE FROM repository WHERE name = ?`, name)
	return changedOne(n, err, "delete", "repository %s", name)
}
