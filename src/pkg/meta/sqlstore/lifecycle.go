package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/beego/beego/v2/client/orm"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var (
	_ meta.PullStore      = (*store)(nil)
	_ meta.LifecycleStore = (*store)(nil)
)

// pullChunk bounds the rows of one RecordPulls statement (3 parameters each, well under both
// databases' parameter limits).
const pullChunk = 500

// RecordPulls updates artifacts and repositories with UPDATE ... FROM (VALUES ...), which SQLite (3.33+)
// and PostgreSQL both accept; VALUES columns are named column1, column2, ... on both.
func (s *store) RecordPulls(ctx context.Context, pulls []meta.Pull) error {
	if len(pulls) == 0 {
		return nil
	}
	counts := map[string]int64{}
	for _, p := range pulls {
		counts[p.Repository] += p.Count
	}
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		for start := 0; start < len(pulls); start += pullChunk {
			chunk := pulls[start:min(start+pullChunk, len(pulls))]
			args := make([]any, 0, 3*len(chunk))
			for _, p := range chunk {
				args = append(args, p.Repository, p.Digest, toDBTime(p.Time))
			}
			if _, err := exec(ctx, tx, `UPDATE artifact SET pull_time = CASE
					WHEN artifact.pull_time IS NULL OR artifact.pull_time < v.column3 THEN v.column3
					ELSE artifact.pull_time END
				FROM (VALUES `+values(len(chunk), "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT))")+`) AS v, repository r
				WHERE r.name = v.column1 AND artifact.repository_id = r.id AND artifact.digest = v.column2`, args...); err != nil {
				return err
			}
		}
		args := make([]any, 0, 2*len(counts))
		for repo, n := range counts {
			if n > 0 {
				args = append(args, repo, n)
			}
		}
		if len(args) == 0 {
			return nil
		}
		for start := 0; start < len(args); start += 2 * pullChunk {
			chunk := args[start:min(start+2*pullChunk, len(args))]
			if _, err := exec(ctx, tx, `UPDATE repository SET pull_count = repository.pull_count + v.column2
				FROM (VALUES `+values(len(chunk)/2, "(CAST(? AS TEXT), CAST(? AS BIGINT))")+`) AS v
				WHERE repository.name = v.column1`, chunk...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: record %d pulls: %w", len(pulls), err)
	}
	return nil
}

// values returns n copies of row joined by commas.
func values(n int, row string) string {
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// ListProjectArtifacts reads the artifacts and the tags in two queries.
func (s *store) ListProjectArtifacts(ctx context.Context, projectID int64, repo string) ([]*meta.Artifact, map[int64][]string, error) {
	where, args := ` WHERE r.project_id = ?`, []any{projectID}
	if repo != "" {
		where, args = where+` AND r.name = ?`, append(args, repo)
	}
	var rows []artifactRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+artifactCols+` FROM repository r
		JOIN artifact a ON a.repository_id = r.id`+where+` ORDER BY r.name, a.id`, args...); err != nil {
		return nil, nil, fmt.Errorf("meta: list artifacts of project %d: %w", projectID, err)
	}
	out, err := convertRows(rows, (*artifactRow).artifact)
	if err != nil {
		return nil, nil, err
	}
	type tagRow struct {
		ArtifactID int64  `orm:"column(artifact_id)"`
		Name       string `orm:"column(name)"`
	}
	var tags []tagRow
	if _, err := queryRows(ctx, s.r, &tags, `SELECT t.artifact_id AS artifact_id, t.name AS name FROM repository r
		JOIN tag t ON t.repository_id = r.id`+where+` ORDER BY t.artifact_id, t.name`, args...); err != nil {
		return nil, nil, fmt.Errorf("meta: list tags of project %d: %w", projectID, err)
	}
	byArtifact := make(map[int64][]string, len(tags))
	for _, t := range tags {
		byArtifact[t.ArtifactID] = append(byArtifact[t.ArtifactID], t.Name)
	}
	return out, byArtifact, nil
}
