package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.QuotaStore = (*store)(nil)

// usageSQL is a project's usage: its distinct blob digests plus its distinct manifest digests (UNION
// drops a (digest, size) pair seen twice). Uses repository(project_id), the blob_link primary key and
// artifact(repository_id, digest). Args: projectID, projectID.
const usageSQL = `SELECT COALESCE(SUM(u.size), 0) FROM (
		SELECT b.digest AS digest, b.size AS size FROM blob_link b JOIN repository r ON r.id = b.repository_id
		WHERE r.project_id = ?
		UNION
		SELECT a.digest AS digest, a.size AS size FROM artifact a JOIN repository r ON r.id = a.repository_id
		WHERE r.project_id = ?
	) u`

// heldInProjectSQL counts the blob links and manifests of a digest in a project. Args: projectID,
// digest, projectID, digest.
const heldInProjectSQL = `SELECT
	(SELECT COUNT(*) FROM blob_link b JOIN repository r ON r.id = b.repository_id WHERE r.project_id = ? AND b.digest = ?) +
	(SELECT COUNT(*) FROM artifact a JOIN repository r ON r.id = a.repository_id WHERE r.project_id = ? AND a.digest = ?)`

func (s *store) ProjectUsage(ctx context.Context, projectID int64) (int64, error) {
	used, err := projectUsage(ctx, s.r, projectID)
	if err != nil {
		return 0, fmt.Errorf("meta: usage of project %d: %w", projectID, err)
	}
	return used, nil
}

func projectUsage(ctx context.Context, q querier, projectID int64) (int64, error) {
	var used []int64
	if _, err := queryRows(ctx, q, &used, usageSQL, projectID, projectID); err != nil {
		return 0, err
	}
	return used[0], nil
}

// chargeQuota runs inside the transaction that is about to link a blob or record a manifest of size
// bytes under digest in the project. When the project has a limit and the digest is new to it, the
// project row is locked (PostgreSQL: FOR NO KEY UPDATE, which does not conflict with the KEY SHARE locks
// that foreign key checks take, so two pushes inserting repositories cannot deadlock; SQLite: its
// single writer already serialises) and the write is refused with a *meta.QuotaError when the usage
// plus size exceeds the limit. Concurrent writes to one limited project are thereby serialised from the
// check to the commit: together they never exceed the limit.
func (s *store) chargeQuota(ctx context.Context, tx querier, projectID int64, digest string, size int64) error {
	var limits []int64
	if _, err := queryRows(ctx, tx, &limits, `SELECT storage_limit FROM project WHERE id = ?`, projectID); err != nil {
		return err
	}
	if len(limits) == 0 || limits[0] <= 0 {
		return nil // unlimited (a missing project fails on its own later)
	}
	if s.d.name == postgresDialect.name {
		limits = limits[:0]
		if _, err := queryRows(ctx, tx, &limits, `SELECT storage_limit FROM project WHERE id = ? FOR NO KEY UPDATE`, projectID); err != nil {
			return err
		}
		if len(limits) == 0 || limits[0] <= 0 {
			return nil
		}
	}
	var held []int64
	if _, err := queryRows(ctx, tx, &held, heldInProjectSQL, projectID, digest, projectID, digest); err != nil {
		return err
	}
	if held[0] > 0 {
		return nil // counted already
	}
	used, err := projectUsage(ctx, tx, projectID)
	if err != nil {
		return err
	}
	if used+size > limits[0] {
		return &meta.QuotaError{ProjectID: projectID, Hard: limits[0], Used: used, Adding: size}
	}
	return nil
}

func (s *store) ListCachedArtifacts(ctx context.Context, projectID int64) ([]*meta.CachedArtifact, error) {
	q := `SELECT r.project_id AS project_id, ` + artifactCols + ` FROM repository r
		JOIN artifact a ON a.repository_id = r.id`
	args := []any{}
	if projectID > 0 {
		q += ` WHERE r.project_id = ?`
		args = append(args, projectID)
	} else {
		q += ` JOIN project p ON p.id = r.project_id WHERE p.registry_id IS NOT NULL`
	}
	var rows []artifactRow
	if _, err := queryRows(ctx, s.r, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("meta: list artifacts of project %d: %w", projectID, err)
	}
	return convertRows(rows, func(r *artifactRow) (*meta.CachedArtifact, error) {
		a, err := r.artifact()
		if err != nil {
			return nil, err
		}
		return &meta.CachedArtifact{ProjectID: r.ProjectID, Artifact: *a}, nil
	})
}

func (s *store) ListBlobLinks(ctx context.Context, repo string) ([]meta.BlobLink, error) {
	type linkRow struct {
		Digest string `orm:"column(digest)"`
		Size   int64  `orm:"column(size)"`
	}
	var rows []linkRow
	if _, err := queryRows(ctx, s.r, &rows,
		`SELECT b.digest AS digest, b.size AS size FROM repository r JOIN blob_link b ON b.repository_id = r.id
		 WHERE r.name = ?`, repo); err != nil {
		return nil, fmt.Errorf("meta: list blob links of %s: %w", repo, err)
	}
	out := make([]meta.BlobLink, len(rows))
	for i, r := range rows {
		out[i] = meta.BlobLink{Digest: r.Digest, Size: r.Size}
	}
	return out, nil
}
