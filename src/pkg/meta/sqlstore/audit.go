package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/beego/beego/v2/client/orm"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.AuditStore = (*store)(nil)

const auditCols = `id, project_id, resource, resource_type, operation, username, op_time`

type auditRow struct {
	ID           int64  `orm:"column(id)"`
	ProjectID    int64  `orm:"column(project_id)"`
	Resource     string `orm:"column(resource)"`
	ResourceType string `orm:"column(resource_type)"`
	Operation    string `orm:"column(operation)"`
	Username     string `orm:"column(username)"`
	OpTime       int64  `orm:"column(op_time)"`
}

func (r *auditRow) entry() *meta.AuditEntry {
	return &meta.AuditEntry{ID: r.ID, ProjectID: r.ProjectID, Resource: r.Resource, ResourceType: r.ResourceType,
		Operation: r.Operation, Username: r.Username, OpTime: fromDBTime(r.OpTime)}
}

// AddAuditEntries inserts entries in one transaction.
func (s *store) AddAuditEntries(ctx context.Context, entries []meta.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.withTx(ctx, func(tx orm.TxOrmer) error {
		for _, e := range entries {
			if _, err := exec(ctx, tx, `INSERT INTO audit_log (project_id, resource, resource_type, operation, username, op_time)
				VALUES (?, ?, ?, ?, ?, ?)`, e.ProjectID, e.Resource, e.ResourceType, e.Operation, e.Username, toDBTime(e.OpTime)); err != nil {
				return fmt.Errorf("meta: add audit entries: %w", err)
			}
		}
		return nil
	})
}

func auditWhere(q meta.AuditQuery) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) { conds = append(conds, cond); args = append(args, arg) }
	if q.Operation != "" {
		add(`operation = ?`, q.Operation)
	}
	if q.ResourceType != "" {
		add(`resource_type = ?`, q.ResourceType)
	}
	if q.Resource != "" {
		add(containsCond("resource"), likeContains(q.Resource))
	}
	if q.Username != "" {
		add(containsCond("username"), likeContains(q.Username))
	}
	if !q.From.IsZero() {
		add(`op_time >= ?`, toDBTime(q.From))
	}
	if !q.To.IsZero() {
		add(`op_time <= ?`, toDBTime(q.To))
	}
	where := ""
	for i, c := range conds {
		if i == 0 {
			where = " WHERE " + c
		} else {
			where += " AND " + c
		}
	}
	return where, args
}

// ListAuditEntries returns matching entries, newest first.
func (s *store) ListAuditEntries(ctx context.Context, q meta.AuditQuery, offset, limit int) ([]*meta.AuditEntry, int64, error) {
	where, args := auditWhere(q)
	return listPage(ctx, s, listQuery{what: "audit entries", cols: auditCols, from: "audit_log", where: where, args: args,
		order: ` ORDER BY op_time DESC, id DESC`}, offset, limit, pure((*auditRow).entry))
}

// PurgeAuditEntries removes entries older than before.
func (s *store) PurgeAuditEntries(ctx context.Context, before time.Time) (int64, error) {
	n, err := exec(ctx, s.w, `DELETE FROM audit_log WHERE op_time < ?`, toDBTime(before))
	if err != nil {
		return 0, fmt.Errorf("meta: purge audit entries: %w", err)
	}
	return n, nil
}
