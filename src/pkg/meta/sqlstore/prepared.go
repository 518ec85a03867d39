package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Hot-path reads (project by name or ID, manifest by digest or tag, referrers, blob links) skip beego:
// they run as database/sql prepared statements on the reader pool, so the database parses each query
// once per connection instead of once per call, the context reaches the driver, and rows are scanned
// without reflection. database/sql prepares a *sql.Stmt again on each pool connection it lands on.
const (
	getProjectSQL       = `SELECT ` + projectCols + ` FROM project WHERE id = ?`
	getProjectByNameSQL = `SELECT ` + projectCols + ` FROM project WHERE name = ?`
	// Referrers order: newest first, then digest.
	referrersOrder      = ` ORDER BY a.push_time DESC, a.digest`
	listReferrersAllSQL = listReferrersSQL + referrersOrder
	// listReferrersTypeSQL args: repo, subject, artifactType.
	listReferrersTypeSQL = listReferrersSQL + ` AND a.artifact_type = ?` + referrersOrder
)

// preparedReads holds the hot-path statements, prepared on the reader pool after migration.
type preparedReads struct {
	project, projectByName        *sql.Stmt
	artifact, tag                 *sql.Stmt
	referrersAll, referrersByType *sql.Stmt
	blobLinked                    *sql.Stmt
}

// prepare prepares every hot-path statement on db; on error the ones already prepared are closed.
func (p *preparedReads) prepare(ctx context.Context, d *dialect, db *sql.DB) error {
	for _, st := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&p.project, getProjectSQL},
		{&p.projectByName, getProjectByNameSQL},
		{&p.artifact, getArtifactSQL},
		{&p.tag, resolveTagSQL},
		{&p.referrersAll, listReferrersAllSQL},
		{&p.referrersByType, listReferrersTypeSQL},
		{&p.blobLinked, blobLinkedSQL},
	} {
		stmt, err := db.PrepareContext(ctx, d.rebind(st.query))
		if err != nil {
			_ = p.close()
			*p = preparedReads{}
			return fmt.Errorf("meta: prepare %q: %w", st.query, err)
		}
		*st.dst = stmt
	}
	return nil
}

// close closes the prepared statements; nil ones are skipped. The fields stay set (reads racing a
// Close get database/sql's "statement is closed" error), so close must be called once.
func (p *preparedReads) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{p.project, p.projectByName, p.artifact, p.tag,
		p.referrersAll, p.referrersByType, p.blobLinked} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// rebind rewrites `?` placeholders to $1, $2, ... for PostgreSQL (as beego's Raw does: every `?`, so
// none may appear inside SQL literals). SQLite takes `?` as it is.
func (d *dialect) rebind(query string) string {
	if d != postgresDialect {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// queryStmt runs a prepared query bound to ctx and calls scan for each row, then reports rows.Err.
func queryStmt(ctx context.Context, stmt *sql.Stmt, scan func(*sql.Rows) error, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// scanProject reads the projectCols columns.
func scanProject(rows *sql.Rows) (projectRow, error) {
	var r projectRow
	var reg sql.NullInt64
	err := rows.Scan(&r.ID, &r.Name, &reg, &r.Metadata, &r.StorageLimit, &r.CreationTime, &r.UpdateTime)
	r.RegistryID = reg.Int64
	return r, err
}

// scanArtifact reads the artifactCols columns.
func scanArtifact(rows *sql.Rows) (artifactRow, error) {
	var r artifactRow
	var subject sql.NullString
	var pull sql.NullInt64
	err := rows.Scan(&r.ID, &r.RepositoryID, &r.Repository, &r.Digest, &r.MediaType, &r.ArtifactType,
		&r.Size, &r.Annotations, &subject, &r.PushTime, &pull, &r.Origin)
	r.Subject, r.PullTime = subject.String, pull.Int64
	return r, err
}

// getProjectStmt returns the single project the statement selects.
func getProjectStmt(ctx context.Context, stmt *sql.Stmt, what string, arg any) (*meta.Project, error) {
	var found []projectRow
	err := queryStmt(ctx, stmt, func(rows *sql.Rows) error {
		r, err := scanProject(rows)
		found = append(found, r)
		return err
	}, arg)
	if err != nil {
		return nil, fmt.Errorf("meta: get %s: %w", what, err)
	}
	if len(found) == 0 {
		return nil, notFound("meta: %s", what)
	}
	return found[0].project()
}

// listArtifactsStmt returns the artifacts the statement selects.
func listArtifactsStmt(ctx context.Context, stmt *sql.Stmt, args ...any) ([]*meta.Artifact, error) {
	out := []*meta.Artifact{}
	err := queryStmt(ctx, stmt, func(rows *sql.Rows) error {
		r, err := scanArtifact(rows)
		if err != nil {
			return err
		}
		a, err := r.artifact()
		if err != nil {
			return err
		}
		out = append(out, a)
		return nil
	}, args...)
	return out, err
}
