package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Garbage collection bookkeeping: history, schedule and the lease.

type gcExecutionRow struct {
	ID           int64  `orm:"column(id)"`
	Kind         string `orm:"column(kind)"`
	Status       string `orm:"column(status)"`
	Parameters   string `orm:"column(parameters)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

const gcExecutionCols = `id, kind, status, parameters, creation_time, update_time`

func (r *gcExecutionRow) execution() *meta.GCExecution {
	return &meta.GCExecution{ID: r.ID, Kind: r.Kind, Status: r.Status, Parameters: r.Parameters,
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime)}
}

func (s *store) CreateGCExecution(ctx context.Context, e *meta.GCExecution) error {
	t := now()
	params := e.Parameters
	if params == "" {
		params = "{}"
	}
	id, err := insertID(ctx, s.w,
		`INSERT INTO gc_execution (kind, status, parameters, creation_time, update_time) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		e.Kind, e.Status, params, toDBTime(t), toDBTime(t))
	if err != nil {
		return fmt.Errorf("meta: create gc execution: %w", err)
	}
	e.ID, e.Parameters, e.CreationTime, e.UpdateTime = id, params, t, t
	return nil
}

func (s *store) UpdateGCExecution(ctx context.Context, id int64, status string, log *string) error {
	q, args := `UPDATE gc_execution SET status = ?, update_time = ?`, []any{status, toDBTime(now())}
	if log != nil {
		q, args = q+`, log = ?`, append(args, *log)
	}
	n, err := exec(ctx, s.w, q+` WHERE id = ?`, append(args, id)...)
	return changedOne(n, err, "update", "gc execution %d", id)
}

func (s *store) GetGCExecution(ctx context.Context, id int64) (*meta.GCExecution, error) {
	return getRow(ctx, s.r, fmt.Sprintf("gc execution %d", id), pure((*gcExecutionRow).execution),
		`SELECT `+gcExecutionCols+` FROM gc_execution WHERE id = ?`, id)
}

func (s *store) ListGCExecutions(ctx context.Context, offset, limit int) ([]*meta.GCExecution, int64, error) {
	return listPage(ctx, s, listQuery{what: "gc executions", cols: gcExecutionCols, from: "gc_execution",
		order: ` ORDER BY id DESC`}, offset, limit, pure((*gcExecutionRow).execution))
}

func (s *store) GCExecutionLog(ctx context.Context, id int64) (string, error) {
	var logs []string
	if _, err := queryRows(ctx, s.r, &logs, `SELECT log FROM gc_execution WHERE id = ?`, id); err != nil {
		return "", fmt.Errorf("meta: gc execution %d log: %w", id, err)
	}
	if len(logs) == 0 {
		return "", notFound("meta: gc execution %d", id)
	}
	return logs[0], nil
}

func (s *store) GetGCSchedule(ctx context.Context) (*meta.GCSchedule, error) {
	type row struct {
		Type         string `orm:"column(type)"`
		Cron         string `orm:"column(cron)"`
		Parameters   string `orm:"column(parameters)"`
		CreationTime int64  `orm:"column(creation_time)"`
		UpdateTime   int64  `orm:"column(update_time)"`
	}
	return getRow(ctx, s.r, "gc schedule", func(r *row) (*meta.GCSchedule, error) {
		return &meta.GCSchedule{Type: r.Type, Cron: r.Cron, Parameters: r.Parameters,
			CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime)}, nil
	}, `SELECT type, cron, parameters, creation_time, update_time FROM gc_schedule WHERE id = 1`)
}

// PutGCSchedule resets the claimed fire time to now, so a new schedule never runs for a past time.
func (s *store) PutGCSchedule(ctx context.Context, sc *meta.GCSchedule) error {
	t := toDBTime(now())
	params := sc.Parameters
	if params == "" {
		params = "{}"
	}
	if _, err := exec(ctx, s.w,
		`INSERT INTO gc_schedule (id, type, cron, parameters, last_fire, creation_time, update_time)
		 VALUES (1, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET type = excluded.type, cron = excluded.cron,
			parameters = excluded.parameters, last_fire = excluded.last_fire, update_time = excluded.update_time`,
		sc.Type, sc.Cron, params, t, t, t); err != nil {
		return fmt.Errorf("meta: put gc schedule: %w", err)
	}
	return nil
}

func (s *store) ClaimGCFire(ctx context.Context, fire time.Time) (bool, error) {
	n, err := exec(ctx, s.w, `UPDATE gc_schedule SET last_fire = ? WHERE id = 1 AND last_fire < ?`,
		toDBTime(fire), toDBTime(fire))
	if err != nil {
		return false, fmt.Errorf("meta: claim gc fire: %w", err)
	}
	return n > 0, nil
}

// AcquireGCLease is one upsert: on PostgreSQL a second node waits for the first's row lock and then
// re-evaluates the WHERE against the new row, so exactly one of them gets it.
func (s *store) AcquireGCLease(ctx context.Context, owner string, until time.Time) (bool, error) {
	t := now()
	var got []int64
	if _, err := queryRows(ctx, s.w, &got,
		`INSERT INTO gc_lease (id, owner, expires) VALUES (1, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		 WHERE gc_lease.expires < ? OR gc_lease.owner = excluded.owner RETURNING id`,
		owner, toDBTime(until), toDBTime(t)); err != nil {
		return false, fmt.Errorf("meta: acquire gc lease: %w", err)
	}
	return len(got) > 0, nil
}

func (s *store) RenewGCLease(ctx context.Context, owner string, until time.Time) (bool, error) {
	n, err := exec(ctx, s.w, `UPDATE gc_lease SET expires = ? WHERE id = 1 AND owner = ?`, toDBTime(until), owner)
	if err != nil {
		return false, fmt.Errorf("meta: renew gc lease: %w", err)
	}
	return n > 0, nil
}

func (s *store) ReleaseGCLease(ctx context.Context, owner string) error {
	if _, err := exec(ctx, s.w, `DELETE FROM gc_lease WHERE id = 1 AND owner = ?`, owner); err != nil {
		return fmt.Errorf("meta: release gc lease: %w", err)
	}
	return nil
}
