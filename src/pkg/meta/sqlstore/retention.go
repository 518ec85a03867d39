package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/beego/beego/v2/client/orm"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.RetentionStore = (*store)(nil)

type policyRow struct {
	ID           int64  `orm:"column(id)"`
	ProjectID    int64  `orm:"column(project_id)"`
	Policy       string `orm:"column(policy)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

func (r *policyRow) policy() *meta.RetentionPolicy {
	return &meta.RetentionPolicy{ID: r.ID, ProjectID: r.ProjectID, Policy: r.Policy,
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime)}
}

const policyCols = `id, project_id, policy, creation_time, update_time`

// CreateRetentionPolicy gives ErrNotFound when the project does not exist.
func (s *store) CreateRetentionPolicy(ctx context.Context, p *meta.RetentionPolicy) (int64, error) {
	t := now()
	return s.insertRow(ctx, write{verb: "create", what: "retention policy"}.under("project", p.ProjectID), stamps{&p.ID, &p.CreationTime, &p.UpdateTime}, t,
		`INSERT INTO retention_policy (project_id, policy, creation_time, update_time)
		VALUES (?, ?, ?, ?) RETURNING id`, p.ProjectID, p.Policy, toDBTime(t), toDBTime(t))
}

func (s *store) GetRetentionPolicy(ctx context.Context, id int64) (*meta.RetentionPolicy, error) {
	return getRow(ctx, s.r, fmt.Sprintf("retention policy %d", id), pure((*policyRow).policy),
		`SELECT `+policyCols+` FROM retention_policy WHERE id = ?`, id)
}

func (s *store) UpdateRetentionPolicy(ctx context.Context, p *meta.RetentionPolicy) error {
	t := now()
	return s.updateRow(ctx, updating("retention policy", p.ID).under("project", p.ProjectID), &p.UpdateTime, t,
		`UPDATE retention_policy SET project_id = ?, policy = ?, update_time = ? WHERE id = ?`,
		p.ProjectID, p.Policy, toDBTime(t), p.ID)
}

func (s *store) DeleteRetentionPolicy(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "retention_policy", "retention policy", id)
}

func (s *store) ListRetentionPolicies(ctx context.Context) ([]*meta.RetentionPolicy, error) {
	var rows []policyRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+policyCols+` FROM retention_policy ORDER BY id`); err != nil {
		return nil, fmt.Errorf("meta: list retention policies: %w", err)
	}
	return convertRows(rows, pure((*policyRow).policy))
}

type executionRow struct {
	ID        int64  `orm:"column(id)"`
	PolicyID  int64  `orm:"column(policy_id)"`
	Status    string `orm:"column(status)"`
	Trigger   string `orm:"column(trigger_kind)"`
	DryRun    bool   `orm:"column(dry_run)"`
	Slot      int64  `orm:"column(slot)"`
	StartTime int64  `orm:"column(start_time)"`
	EndTime   int64  `orm:"column(end_time)"`
}

const executionCols = `id, policy_id, status, trigger_kind, dry_run, slot, start_time, end_time`

func (r *executionRow) execution() *meta.RetentionExecution {
	return &meta.RetentionExecution{ID: r.ID, PolicyID: r.PolicyID, Status: r.Status, Trigger: r.Trigger,
		DryRun: r.DryRun, Slot: fromDBTimeOrZero(r.Slot), StartTime: fromDBTime(r.StartTime), EndTime: fromDBTimeOrZero(r.EndTime)}
}

// StartRetentionExecution marks stale runs Error and inserts in one transaction; the unique indexes
// decide between nodes racing to start.
func (s *store) StartRetentionExecution(ctx context.Context, e *meta.RetentionExecution, staleBefore time.Time) error {
	var id int64
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		if _, err := exec(ctx, tx, `UPDATE retention_execution SET status = ?, end_time = heartbeat
			WHERE policy_id = ? AND status IN (?, ?) AND heartbeat < ?`,
			meta.RetentionError, e.PolicyID, meta.RetentionRunning, meta.RetentionStopping, toDBTime(staleBefore)); err != nil {
			return err
		}
		var err error
		id, err = insertID(ctx, tx, `INSERT INTO retention_execution
			(policy_id, status, trigger_kind, dry_run, slot, start_time, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			e.PolicyID, meta.RetentionRunning, e.Trigger, e.DryRun, nullIfZeroTime(e.Slot), toDBTime(e.StartTime), toDBTime(e.StartTime))
		return err
	})
	switch {
	case isUniqueViolation(err):
		return conflict("meta: retention policy %d has an execution running (or its slot ran)", e.PolicyID)
	case isForeignKeyViolation(err):
		return notFound("meta: retention policy %d", e.PolicyID)
	case err != nil:
		return fmt.Errorf("meta: start retention execution of policy %d: %w", e.PolicyID, err)
	}
	e.ID, e.Status = id, meta.RetentionRunning
	return nil
}

func (s *store) HeartbeatRetentionExecution(ctx context.Context, id int64, t time.Time) (string, error) {
	if _, err := exec(ctx, s.w, `UPDATE retention_execution SET heartbeat = ? WHERE id = ?`, toDBTime(t), id); err != nil {
		return "", fmt.Errorf("meta: heartbeat retention execution %d: %w", id, err)
	}
	e, err := s.GetRetentionExecution(ctx, id)
	if err != nil {
		return "", err
	}
	return e.Status, nil
}

func (s *store) FinishRetentionExecution(ctx context.Context, id int64, status string, end time.Time) error {
	n, err := exec(ctx, s.w, `UPDATE retention_execution SET status = ?, end_time = ? WHERE id = ?`, status, toDBTime(end), id)
	return changedOne(n, err, "finish", "retention execution %d", id)
}

func (s *store) StopRetentionExecution(ctx context.Context, id int64) error {
	n, err := exec(ctx, s.w, `UPDATE retention_execution SET status = ? WHERE id = ? AND status = ?`,
		meta.RetentionStopping, id, meta.RetentionRunning)
	if err != nil {
		return fmt.Errorf("meta: stop retention execution %d: %w", id, err)
	}
	if n == 0 {
		return notFound("meta: running retention execution %d", id)
	}
	return nil
}

func (s *store) GetRetentionExecution(ctx context.Context, id int64) (*meta.RetentionExecution, error) {
	return getRow(ctx, s.w, fmt.Sprintf("retention execution %d", id), pure((*executionRow).execution),
		`SELECT `+executionCols+` FROM retention_execution WHERE id = ?`, id)
}

func (s *store) ListRetentionExecutions(ctx context.Context, policyID int64, offset, limit int) ([]*meta.RetentionExecution, int64, error) {
	return listPage(ctx, s, listQuery{what: "retention executions", cols: executionCols, from: "retention_execution",
		where: ` WHERE policy_id = ?`, args: []any{policyID}, order: ` ORDER BY id DESC`}, offset, limit, pure((*executionRow).execution))
}

type taskRow struct {
	ID          int64  `orm:"column(id)"`
	ExecutionID int64  `orm:"column(execution_id)"`
	Repository  string `orm:"column(repository)"`
	Status      string `orm:"column(status)"`
	Total       int64  `orm:"column(total)"`
	Retained    int64  `orm:"column(retained)"`
	Log         string `orm:"column(log)"`
	StartTime   int64  `orm:"column(start_time)"`
	EndTime     int64  `orm:"column(end_time)"`
}

const taskCols = `id, execution_id, repository, status, total, retained, log, start_time, end_time`

func (r *taskRow) task() *meta.RetentionTask {
	return &meta.RetentionTask{ID: r.ID, ExecutionID: r.ExecutionID, Repository: r.Repository, Status: r.Status,
		Total: r.Total, Retained: r.Retained, Log: r.Log, StartTime: fromDBTime(r.StartTime), EndTime: fromDBTimeOrZero(r.EndTime)}
}

func (s *store) AddRetentionTask(ctx context.Context, t *meta.RetentionTask) error {
	id, err := insertID(ctx, s.w, `INSERT INTO retention_task
		(execution_id, repository, status, total, retained, log, start_time, end_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		t.ExecutionID, t.Repository, t.Status, t.Total, t.Retained, t.Log, toDBTime(t.StartTime), nullIfZeroTime(t.EndTime))
	switch {
	case isForeignKeyViolation(err):
		return notFound("meta: retention execution %d", t.ExecutionID)
	case err != nil:
		return fmt.Errorf("meta: add retention task: %w", err)
	}
	t.ID = id
	return nil
}

func (s *store) ListRetentionTasks(ctx context.Context, executionID int64, offset, limit int) ([]*meta.RetentionTask, int64, error) {
	return listPage(ctx, s, listQuery{what: "retention tasks", cols: taskCols, from: "retention_task",
		where: ` WHERE execution_id = ?`, args: []any{executionID}, order: ` ORDER BY id`}, offset, limit, pure((*taskRow).task))
}

func (s *store) GetRetentionTask(ctx context.Context, id int64) (*meta.RetentionTask, error) {
	return getRow(ctx, s.r, fmt.Sprintf("retention task %d", id), pure((*taskRow).task),
		`SELECT `+taskCols+` FROM retention_task WHERE id = ?`, id)
}
