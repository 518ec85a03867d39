package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/berth-registry/berth/src/pkg/meta"

	"github.com/beego/beego/v2/client/orm"
)

var _ meta.BlobLinkStore = (*store)(nil)

// LinkBlob keeps the first recorded size when the link exists. ErrNotFound when the project does not
// exist, ErrConflict when the repository belongs to another project, a *meta.QuotaError when the blob is
// new to a project with a storage limit it would exceed (chargeQuota).
func (s *store) LinkBlob(ctx context.Context, projectID int64, repo, digest string, size int64) error {
	if repo == "" || digest == "" {
		return fmt.Errorf("meta: link blob: empty repository name or digest")
	}
	t := now()
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		repoID, err := ensureRepository(ctx, tx, projectID, repo, t)
		if err != nil {
			return err
		}
		if err := s.chargeQuota(ctx, tx, projectID, digest, size); err != nil {
			return err
		}
		_, err = exec(ctx, tx,
			`INSERT INTO blob_link (repository_id, digest, size, creation_time) VALUES (?, ?, ?, ?)
			 ON CONFLICT (repository_id, digest) DO NOTHING`, repoID, digest, size, toDBTime(t))
		return err
	})
	if err != nil {
		return fmt.Errorf("meta: link blob %s@%s: %w", repo, digest, err)
	}
	return nil
}

// BlobLinked is one indexed query (blobLinkedSQL).
func (s *store) BlobLinked(ctx context.Context, repo, digest string) (int64, error) {
	var sizes []int64
	if err := queryStmt(ctx, s.stmts.blobLinked, func(rows *sql.Rows) error {
		var n int64
		err := rows.Scan(&n)
		sizes = append(sizes, n)
		return err
	}, repo, digest); err != nil {
		return 0, fmt.Errorf("meta: blob link %s@%s: %w", repo, digest, err)
	}
	if len(sizes) == 0 {
		return 0, notFound("meta: blob %s@%s", repo, digest)
	}
	return sizes[0], nil
}

// BlobLinkedInProject uses repository(project_id) and blob_link(digest).
func (s *store) BlobLinkedInProject(ctx context.Context, projectID int64, digest string) (int64, error) {
	var sizes []int64
	if _, err := queryRows(ctx, s.r, &sizes,
		`SELECT b.size FROM blob_link b JOIN repository r ON r.id = b.repository_id
		 WHERE r.project_id = ? AND b.digest = ? LIMIT 1`, projectID, digest); err != nil {
		return 0, fmt.Errorf("meta: blob %s in project %d: %w", digest, projectID, err)
	}
	if len(sizes) == 0 {
		return 0, notFound("meta: blob %s in project %d", digest, projectID)
	}
	return sizes[0], nil
}

// UnlinkBlob removes the link; ErrNotFound when there is none.
func (s *store) UnlinkBlob(ctx context.Context, repo, digest string) error {
	n, err := exec(ctx, s.w,
		`DELETE FROM blob_link WHERE repository_id = (SELECT id FROM repository WHERE name = ?) AND digest = ?`,
		repo, digest)
	return changedOne(n, err, "unlink", "blob %s@%s", repo, digest)
}
