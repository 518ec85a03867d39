package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// The rules every entity file follows, each written once: insert returning the new ID, read one row,
// list one page with the total, and change exactly one row.

// insertID runs an `INSERT ... RETURNING id` (SQLite >= 3.35 and PostgreSQL both support it) and
// returns the new ID. A driver error is returned as it is, so that the caller can classify constraint
// violations (isUniqueViolation, isForeignKeyViolation); a statement returning other than one row is an
// error too.
func insertID(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	var ids []int64
	if _, err := queryRows(ctx, q, &ids, query, args...); err != nil {
		return 0, err
	}
	if len(ids) != 1 {
		return 0, fmt.Errorf("insert returned %d rows", len(ids))
	}
	return ids[0], nil
}

// getRow runs query for one row of R and converts it. An error is wrapped as "meta: get <what>"; no row
// gives ErrNotFound, "meta: <what>". More rows than one: the first is returned.
func getRow[R, T any](ctx context.Context, q querier, what string, conv func(*R) (T, error), query string, args ...any) (T, error) {
	var rows []R
	var zero T
	if _, err := queryRows(ctx, q, &rows, query, args...); err != nil {
		return zero, fmt.Errorf("meta: get %s: %w", what, err)
	}
	if len(rows) == 0 {
		return zero, notFound("meta: %s", what)
	}
	return conv(&rows[0])
}

// pure adapts a conversion that cannot fail to getRow, listPage and convertRows.
func pure[R, T any](f func(*R) T) func(*R) (T, error) {
	return func(r *R) (T, error) { return f(r), nil }
}

// convertRows converts every row, in order; the first error stops it.
func convertRows[R, T any](rows []R, conv func(*R) (T, error)) ([]T, error) {
	out := make([]T, 0, len(rows))
	for i := range rows {
		v, err := conv(&rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// listQuery is a listing: the rows of from matching where, in order.
type listQuery struct {
	what  string // the plural for errors: "meta: count <what>", "meta: list <what>"
	cols  string // the columns of a row
	from  string // a table, with an alias when cols use one
	where string // "" or " WHERE ..."
	args  []any  // the arguments of where
	order string // " ORDER BY ..."
}

// listPage returns one page of the listing (limit <= 0: all from offset, as dialect.limitOffset) and
// the total count of rows matching, read from the reader pool.
func listPage[R, T any](ctx context.Context, s *store, l listQuery, offset, limit int, conv func(*R) (T, error)) ([]T, int64, error) {
	var total []int64
	if _, err := queryRows(ctx, s.r, &total, `SELECT COUNT(*) FROM `+l.from+l.where, l.args...); err != nil {
		return nil, 0, fmt.Errorf("meta: count %s: %w", l.what, err)
	}
	page, args := s.d.limitOffset(limit, offset, l.args)
	var rows []R
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+l.cols+` FROM `+l.from+l.where+l.order+page, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: list %s: %w", l.what, err)
	}
	out, err := convertRows(rows, conv)
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list %s: %w", l.what, err)
	}
	return out, total[0], nil
}

// listNamed lists the rows of table whose column (a name) contains name case-insensitively, all when
// name is "", ordered by that column: the listing of projects, registries and users.
func listNamed[R, T any](ctx context.Context, s *store, what, cols, table, column, name string, offset, limit int,
	conv func(*R) (T, error)) ([]T, int64, error) {
	l := listQuery{what: what, cols: cols, from: table, args: []any{}, order: ` ORDER BY ` + column}
	if name != "" {
		l.where, l.args = ` WHERE `+containsCond(column), []any{likeContains(name)}
	}
	return listPage(ctx, s, l, offset, limit, conv)
}

// changedOne maps the result of a statement meant to change one row, whose "what" is format with
// args: an error is wrapped as "meta: <verb> <what>", no row changed gives ErrNotFound, "meta: <what>".
func changedOne(n int64, err error, verb, format string, args ...any) error {
	switch {
	case err != nil:
		return fmt.Errorf("meta: %s %s: %w", verb, fmt.Sprintf(format, args...), err)
	case n == 0:
		return notFound("meta: "+format, args...)
	}
	return nil
}

// deleteByID deletes the row of table with that ID; none is ErrNotFound, "meta: <what> <id>".
func (s *store) deleteByID(ctx context.Context, table, what string, id int64) error {
	n, err := exec(ctx, s.w, `DELETE FROM `+table+` WHERE id = ?`, id)
	return changedOne(n, err, "delete", what+" %d", id)
}

// deleteUnused runs query, a DELETE of one row guarded by a NOT EXISTS on what references it (backed
// by a foreign key when a write races it). When it deletes nothing, get tells a missing row (its
// ErrNotFound is returned) from one still in use: ErrConflict, "meta: <what> <inUse>".
func (s *store) deleteUnused(ctx context.Context, what, inUse string, get func() error, query string, args ...any) error {
	n, err := exec(ctx, s.w, query, args...)
	if isForeignKeyViolation(err) {
		return conflict("meta: %s %s", what, inUse)
	}
	if err != nil {
		return fmt.Errorf("meta: delete %s: %w", what, err)
	}
	if n > 0 {
		return nil
	}
	if err := get(); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return err
		}
		return fmt.Errorf("meta: delete %s: %w", what, err)
	}
	return conflict("meta: %s %s", what, inUse)
}

// write names one INSERT or UPDATE for its errors: "meta: <verb> <what>: <driver error>".
type write struct {
	verb, what string
	dup        string // a unique violation gives ErrConflict, "meta: <dup>" ("": none is expected)
	parent     string // a foreign key violation gives ErrNotFound, "meta: <verb> <what>: <parent>" ("": none is expected)
}

// created maps the error of an INSERT (nil: nil) by the rules of w.
func (w write) created(err error) error {
	switch {
	case err == nil:
		return nil
	case w.dup != "" && isUniqueViolation(err):
		return conflict("meta: %s", w.dup)
	case w.parent != "" && isForeignKeyViolation(err):
		return notFound("meta: %s %s: %s", w.verb, w.what, w.parent)
	}
	return w.fail(err)
}

// fail wraps an error of w that no rule maps: "meta: <verb> <what>: <err>".
func (w write) fail(err error) error {
	return fmt.Errorf("meta: %s %s: %w", w.verb, w.what, err)
}

// changedOne maps the outcome of an UPDATE of one row by the rules of w; no row changed gives
// ErrNotFound, "meta: <what>".
func (w write) changedOne(n int64, err error) error {
	if err != nil {
		return w.created(err)
	}
	return changedOne(n, nil, w.verb, "%s", w.what)
}

// stamps are the fields a create sets on its entity: the new ID and both times.
type stamps struct {
	id               *int64
	created, updated *time.Time
}

// insertRow runs an `INSERT ... RETURNING id` by the rules of w and, once it succeeded, sets the new
// ID and both times (at) through set.
func (s *store) insertRow(ctx context.Context, w write, set stamps, at time.Time, query string, args ...any) (int64, error) {
	id, err := insertID(ctx, s.w, query, args...)
	if err := w.created(err); err != nil {
		return 0, err
	}
	*set.id, *set.created, *set.updated = id, at, at
	return id, nil
}

// updateRow runs an UPDATE of one row by the rules of w and, once it changed the row, sets *updated to
// at.
func (s *store) updateRow(ctx context.Context, w write, updated *time.Time, at time.Time, query string, args ...any) error {
	n, err := exec(ctx, s.w, query, args...)
	if err := w.changedOne(n, err); err != nil {
		return err
	}
	*updated = at
	return nil
}

// creating is the create of a row of kind named name, which must be unique: "meta: <kind> <name> exists".
func creating(kind, name string) write {
	return write{verb: "create", what: fmt.Sprintf("%s %q", kind, name), dup: fmt.Sprintf("%s %q exists", kind, name)}
}

// updating is the update of the row of kind with that ID.
func updating(kind string, id int64) write {
	return write{verb: "update", what: fmt.Sprintf("%s %d", kind, id)}
}

// under is w whose row references the row of kind with that ID: a foreign key violation names it.
func (w write) under(kind string, id int64) write {
	w.parent = fmt.Sprintf("%s %d", kind, id)
	return w
}

// unique is w whose unique violation is ErrConflict, "meta: <dup>".
func (w write) unique(dup string) write {
	w.dup = dup
	return w
}
