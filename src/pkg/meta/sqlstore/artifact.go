package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/berth-registry/berth/src/pkg/meta"
	"time"

	"github.com/beego/beego/v2/client/orm"
)

var _ meta.ArtifactStore = (*store)(nil)

type artifactRow struct {
	ID           int64  `orm:"column(id)"`
	RepositoryID int64  `orm:"column(repository_id)"`
	Repository   string `orm:"column(repository)"`
	Digest       string `orm:"column(digest)"`
	MediaType    string `orm:"column(media_type)"`
	ArtifactType string `orm:"column(artifact_type)"`
	Size         int64  `orm:"column(size)"`
	Annotations  string `orm:"column(annotations)"`
	Subject      string `orm:"column(subject_digest)"` // NULL scans as ""
	PushTime     int64  `orm:"column(push_time)"`
	PullTime     int64  `orm:"column(pull_time)"` // NULL scans as 0
	Origin       string `orm:"column(origin)"`
	// ProjectID is selected only by ListCachedArtifacts (r.project_id AS project_id); artifactCols
	// leave it 0.
	ProjectID int64 `orm:"column(project_id)"`
}

// artifactCols selects an artifactRow from artifact a joined with repository r.
const artifactCols = `a.id AS id, a.repository_id AS repository_id, r.name AS repository, a.digest AS digest,
	a.media_type AS media_type, a.artifact_type AS artifact_type, a.size AS size, a.annotations AS annotations,
	a.subject_digest AS subject_digest, a.push_time AS push_time, a.pull_time AS pull_time, a.origin AS origin`

func (r *artifactRow) artifact() (*meta.Artifact, error) {
	ann, err := decodeMap(r.Annotations)
	if err != nil {
		return nil, fmt.Errorf("artifact %s annotations: %w", r.Digest, err)
	}
	if len(ann) == 0 {
		ann = nil
	}
	return &meta.Artifact{
		ID:           r.ID,
		RepositoryID: r.RepositoryID,
		Repository:   r.Repository,
		Digest:       r.Digest,
		MediaType:    r.MediaType,
		ArtifactType: r.ArtifactType,
		Size:         r.Size,
		Annotations:  ann,
		Subject:      r.Subject,
		PushTime:     fromDBTime(r.PushTime),
		PullTime:     fromDBTimeOrZero(r.PullTime),
		Origin:       r.Origin,
	}, nil
}

// ensureRepository returns the ID of repository name, creating it in projectID if needed. ErrNotFound
// when the project does not exist, ErrConflict when the repository belongs to another project.
func ensureRepository(ctx context.Context, tx querier, projectID int64, name string, t time.Time) (int64, error) {
	type repoRow struct {
		ID        int64 `orm:"column(id)"`
		ProjectID int64 `orm:"column(project_id)"`
	}
	lookup := func() (int64, bool, error) {
		var rows []repoRow
		if _, err := queryRows(ctx, tx, &rows, `SELECT id, project_id FROM repository WHERE name = ?`, name); err != nil {
			return 0, false, err
		}
		if len(rows) == 0 {
			return 0, false, nil
		}
		if rows[0].ProjectID != projectID {
			return 0, false, conflict("repository %q belongs to project %d, not %d", name, rows[0].ProjectID, projectID)
		}
		return rows[0].ID, true, nil
	}
	if id, ok, err := lookup(); err != nil || ok {
		return id, err
	}
	var ids []int64
	_, err := queryRows(ctx, tx, &ids,
		`INSERT INTO repository (project_id, name, creation_time) VALUES (?, ?, ?)
		 ON CONFLICT (name) DO NOTHING RETURNING id`, projectID, name, toDBTime(t))
	if isForeignKeyViolation(err) {
		return 0, notFound("project %d", projectID)
	}
	if err != nil {
		return 0, err
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	// A concurrent transaction created it (PostgreSQL waited for it to commit before DO NOTHING).
	id, ok, err := lookup()
	if err == nil && !ok {
		err = fmt.Errorf("repository %q vanished while being created", name)
	}
	return id, err
}

// PutArtifact sets a.ID, a.RepositoryID, a.Repository, a.PushTime and a.Origin from the stored row. A new artifact
// is stored with a.PushTime, or the current time when that is zero; for an existing digest the stored row
// is kept as it is. ErrNotFound when the project does not exist, ErrConflict when the repository belongs
// to another project, a *meta.QuotaError when the manifest is new to a project with a storage limit it
// would exceed (chargeQuota).
func (s *store) PutArtifact(ctx context.Context, projectID int64, repo string, a *meta.Artifact, tags ...string) error {
	if repo == "" || a.Digest == "" {
		return fmt.Errorf("meta: put artifact: empty repository name or digest")
	}
	ann, err := encodeMap(a.Annotations)
	if err != nil {
		return fmt.Errorf("meta: put artifact %s@%s: %w", repo, a.Digest, err)
	}
	t := now()
	push := a.PushTime
	if push.IsZero() {
		push = t
	}
	type storedRow struct {
		ID       int64  `orm:"column(id)"`
		PushTime int64  `orm:"column(push_time)"`
		Origin   string `orm:"column(origin)"`
	}
	var repoID int64
	var stored []storedRow
	err = s.withTx(ctx, func(tx orm.TxOrmer) error {
		var err error
		if repoID, err = ensureRepository(ctx, tx, projectID, repo, t); err != nil {
			return err
		}
		if err = s.chargeQuota(ctx, tx, projectID, a.Digest, a.Size); err != nil {
			return err
		}
		if _, err = queryRows(ctx, tx, &stored,
			`INSERT INTO artifact (repository_id, digest, media_type, artifact_type, size, annotations,
				subject_digest, push_time, origin)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id, push_time, origin`,
			repoID, a.Digest, a.MediaType, a.ArtifactType, a.Size, ann, nullIfEmpty(a.Subject),
			toDBTime(push), a.Origin); err != nil {
			return err
		}
		if len(stored) == 0 { // kept: the digest is there already
			if _, err = queryRows(ctx, tx, &stored,
				`SELECT id, push_time, origin FROM artifact WHERE repository_id = ? AND digest = ?`, repoID, a.Digest); err != nil {
				return err
			}
			if len(stored) == 0 {
				return fmt.Errorf("artifact vanished while being stored")
			}
		}
		for _, tag := range tags {
			if tag == "" {
				continue
			}
			if _, err = exec(ctx, tx,
				`INSERT INTO tag (repository_id, name, artifact_id, push_time) VALUES (?, ?, ?, ?)
				 ON CONFLICT (repository_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, push_time = excluded.push_time`,
				repoID, tag, stored[0].ID, toDBTime(t)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: put artifact %s@%s: %w", repo, a.Digest, err)
	}
	a.ID, a.RepositoryID, a.Repository, a.PushTime, a.Origin = stored[0].ID, repoID, repo, fromDBTime(stored[0].PushTime), stored[0].Origin
	return nil
}

// Hot-path queries (manifest and blob GET/HEAD), each one statement on unique indexes; the plan test
// checks that none scans a table.
const (
	// getArtifactSQL uses repository(name) and artifact(repository_id, digest). Args: repo, digest.
	getArtifactSQL = `SELECT ` + artifactCols + ` FROM repository r JOIN artifact a ON a.repository_id = r.id
		WHERE r.name = ? AND a.digest = ?`
	// resolveTagSQL uses repository(name), tag(repository_id, name) and artifact(id). Args: repo, tag.
	resolveTagSQL = `SELECT ` + artifactCols + ` FROM repository r
		JOIN tag t ON t.repository_id = r.id
		JOIN artifact a ON a.id = t.artifact_id
		WHERE r.name = ? AND t.name = ?`
	// listReferrersSQL uses repository(name) and the partial index artifact(repository_id,
	// subject_digest). Args: repo, subject.
	listReferrersSQL = `SELECT ` + artifactCols + ` FROM repository r JOIN artifact a ON a.repository_id = r.id
		WHERE r.name = ? AND a.subject_digest = ?`
	// blobLinkedSQL uses repository(name) and the blob_link primary key. Args: repo, digest.
	blobLinkedSQL = `SELECT b.size FROM repository r JOIN blob_link b ON b.repository_id = r.id
		WHERE r.name = ? AND b.digest = ?`
)

func (s *store) GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error) {
	return getArtifactStmt(ctx, s.stmts.artifact, fmt.Sprintf("artifact %s@%s", repo, digest), repo, digest)
}

func (s *store) ResolveTag(ctx context.Context, repo, tag string) (*meta.Artifact, error) {
	return getArtifactStmt(ctx, s.stmts.tag, fmt.Sprintf("tag %s:%s", repo, tag), repo, tag)
}

// getArtifactStmt returns the single artifact the statement selects.
func getArtifactStmt(ctx context.Context, stmt *sql.Stmt, what string, args ...any) (*meta.Artifact, error) {
	found, err := listArtifactsStmt(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: get %s: %w", what, err)
	}
	if len(found) == 0 {
		return nil, notFound("meta: %s", what)
	}
	return found[0], nil
}

// ListTags is one query: no row means no repository, a single NULL name (scanned as "", a name no tag
// has) means a repository without tags after page.Last.
func (s *store) ListTags(ctx context.Context, repo string, page meta.Page) ([]string, error) {
	limit, args := s.d.limitOffset(page.N, 0, []any{page.Last, repo})
	var names []string
	if _, err := queryRows(ctx, s.r, &names,
		`SELECT t.name FROM repository r LEFT JOIN tag t ON t.repository_id = r.id AND t.name > ?
		 WHERE r.name = ? ORDER BY t.name`+limit, args...); err != nil {
		return nil, fmt.Errorf("meta: list tags of %s: %w", repo, err)
	}
	if len(names) == 0 {
		return nil, notFound("meta: repository %s", repo)
	}
	if len(names) == 1 && names[0] == "" {
		return []string{}, nil
	}
	return names, nil
}

// DeleteTag removes one tag; ErrNotFound when the repository or the tag does not exist.
func (s *store) DeleteTag(ctx context.Context, repo, tag string) error {
	n, err := exec(ctx, s.w,
		`DELETE FROM tag WHERE repository_id = (SELECT id FROM repository WHERE name = ?) AND name = ?`, repo, tag)
	return changedOne(n, err, "delete", "tag %s:%s", repo, tag)
}

// DeleteArtifact deletes the artifact row; its tags go with it (ON DELETE CASCADE) and so does its
// referrer index entry (its subject_digest). Artifacts that name it as their subject stay: the
// distribution spec allows referrers whose subject is missing.
func (s *store) DeleteArtifact(ctx context.Context, repo, digest string) error {
	n, err := exec(ctx, s.w,
		`DELETE FROM artifact WHERE repository_id = (SELECT id FROM repository WHERE name = ?) AND digest = ?`,
		repo, digest)
	return changedOne(n, err, "delete", "artifact %s@%s", repo, digest)
}

// ListReferrers returns an empty list for an unknown repository or subject.
func (s *store) ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error) {
	stmt, args := s.stmts.referrersAll, []any{repo, subject}
	if artifactType != "" {
		stmt, args = s.stmts.referrersByType, append(args, artifactType)
	}
	out, err := listArtifactsStmt(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: list referrers of %s@%s: %w", repo, subject, err)
	}
	return out, nil
}

// ListRepositories pages through repository names bytewise.
func (s *store) ListRepositories(ctx context.Context, page meta.Page) ([]string, error) {
	limit, args := s.d.limitOffset(page.N, 0, []any{page.Last})
	names := []string{}
	if _, err := queryRows(ctx, s.r, &names,
		`SELECT name FROM repository WHERE name > ? ORDER BY name`+limit, args...); err != nil {
		return nil, fmt.Errorf("meta: list repositories: %w", err)
	}
	return names, nil
}

// CountRepositories returns 0 for a project that does not exist.
func (s *store) CountRepositories(ctx context.Context, projectID int64) (int64, error) {
	var n []int64
	if _, err := queryRows(ctx, s.r, &n, `SELECT COUNT(*) FROM repository WHERE project_id = ?`, projectID); err != nil {
		return 0, fmt.Errorf("meta: count repositories of project %d: %w", projectID, err)
	}
	return n[0], nil
}

// TouchPull never moves the pull time backwards, so late or reordered updates are harmless.
// ErrNotFound when the artifact does not exist.
func (s *store) TouchPull(ctx context.Context, repo, digest string, t time.Time) error {
	pt := toDBTime(t)
	n, err := exec(ctx, s.w,
		`UPDATE artifact SET pull_time = CASE WHEN pull_time IS NULL OR pull_time < ? THEN ? ELSE pull_time END
		 WHERE repository_id = (SELECT id FROM repository WHERE name = ?) AND digest = ?`,
		pt, pt, repo, digest)
	if err != nil {
		return fmt.Errorf("meta: touch pull %s@%s: %w", repo, digest, err)
	}
	if n == 0 {
		return notFound("meta: artifact %s@%s", repo, digest)
	}
	return nil
}
