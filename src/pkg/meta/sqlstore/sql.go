package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-registry/berth/src/pkg/meta"
	"strings"
	"time"

	"github.com/beego/beego/v2/client/orm"
)

// querier is what both a beego Ormer and a TxOrmer offer.
type querier = orm.QueryExecutor

// queryRows runs a query and fills dest, a pointer to a slice of a row struct (columns matched by the
// `orm:"column(x)"` tags) or of a scalar. It returns the number of rows.
//
// beego v2.3.8's RawWithCtx does not pass ctx on to database/sql, so ctx is checked before the query;
// a query that has started runs to its end. Inside a transaction the transaction itself is bound to ctx.
// QueryRows (unlike beego's QueryRow) reports errors met while iterating, so it is used for single rows too.
func queryRows(ctx context.Context, q querier, dest any, query string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return q.RawWithCtx(ctx, query, args...).QueryRows(dest)
}

// exec runs a statement and returns the number of rows it affected.
func exec(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	res, err := q.RawWithCtx(ctx, query, args...).Exec()
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// withTx runs fn in a write transaction bound to ctx and commits when fn returns nil. beego's DoTx logs
// and drops commit errors, so the transaction is driven here. Inside fn, use only tx: on SQLite the
// writer pool has one connection, which the transaction holds.
func (s *store) withTx(ctx context.Context, fn func(tx orm.TxOrmer) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.w.BeginWithCtx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
		// A cancelled context rolls the transaction back; report that rather than sql.ErrTxDone.
		if err != nil && errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
			err = ctx.Err()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// Times are stored as microseconds since the Unix epoch (BIGINT): exact, zone-free (UTC by definition),
// ordered, and identical on both databases. beego's Raw would format time.Time arguments to whole
// seconds in the database's zone, so times never reach it as time.Time.

// now returns the current time at the precision the database keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func toDBTime(t time.Time) int64 { return t.UnixMicro() }

func fromDBTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// fromDBTimeOrZero maps 0 (NULL scans as 0) to the zero time.
func fromDBTimeOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromDBTime(us)
}

// nullIfZero maps 0 to NULL, for optional foreign keys.
func nullIfZero(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// nullIfZeroTime maps the zero time to NULL and any other time to its database form (toDBTime), for
// optional time columns; fromDBTimeOrZero reads them back.
func nullIfZeroTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return toDBTime(t)
}

// nullIfEmpty maps "" to NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// encodeMap stores a string map as a JSON object; nil is stored as {}.
func encodeMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeMap reads a JSON object written by encodeMap; it never returns nil.
func decodeMap(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode JSON column: %w", err)
	}
	return m, nil
}

// containsCond is the condition "column contains the argument, case-insensitively"; the argument is
// likeContains(sub).
func containsCond(column string) string { return `LOWER(` + column + `) LIKE LOWER(?) ESCAPE '\'` }

// likeContains returns a LIKE pattern (for `ESCAPE '\'`) matching values that contain sub.
func likeContains(sub string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(sub) + "%"
}

// notFound wraps ErrNotFound with what was looked for.
func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, meta.ErrNotFound)...)
}

// conflict wraps ErrConflict with what collided.
func conflict(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, meta.ErrConflict)...)
}
