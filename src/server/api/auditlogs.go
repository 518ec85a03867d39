package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// auditLog is Harbor's AuditLog.
type auditLog struct {
	ID           int64      `json:"id"`
	Resource     string     `json:"resource"`
	ResourceType string     `json:"resource_type"`
	Operation    string     `json:"operation"`
	Username     string     `json:"username"`
	OpTime       harborTime `json:"op_time"`
}

// listAuditLogs answers GET /audit-logs (system administrators), newest first, with page, page_size
// and Harbor's q: comma-separated operation=<op>, resource_type=<type>, resource=<part> or
// resource=~<part>, username=<part> or username=~<part>, op_time=[<from>~<to>] (either end may be
// empty; times as "2006-01-02 15:04:05" UTC or RFC 3339).
func (a *API) listAuditLogs(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]auditLog, int64, error) {
		aq, err := parseAuditQuery(q.Get("q"))
		if err != nil {
			return nil, 0, err
		}
		entries, total, err := a.auditLog.ListAuditEntries(r.Context(), aq, pg.Offset(), pg.Size)
		return listed(entries, total, err, "audit logs", toAuditLog)
	})
}

func toAuditLog(e *meta.AuditEntry) auditLog {
	return auditLog{ID: e.ID, Resource: e.Resource, ResourceType: e.ResourceType, Operation: e.Operation,
		Username: e.Username, OpTime: harborTime(e.OpTime)}
}

func parseAuditQuery(q string) (meta.AuditQuery, error) {
	var aq meta.AuditQuery
	if q == "" {
		return aq, nil
	}
	for _, term := range strings.Split(q, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok {
			return aq, errcode.ErrBadRequest.WithMessage("query term %q is not <key>=<value>", term)
		}
		val = strings.TrimPrefix(val, "~")
		var err error
		switch key {
		case "operation":
			aq.Operation = val
		case "resource_type":
			aq.ResourceType = val
		case "resource":
			aq.Resource = val
		case "username":
			aq.Username = val
		case "op_time":
			aq.From, aq.To, err = parseTimeRange(val)
		default:
			err = errcode.ErrBadRequest.WithMessage("unsupported query key %q: use operation, resource_type, resource, username or op_time", key)
		}
		if err != nil {
			return aq, err
		}
	}
	return aq, nil
}

// parseTimeRange reads "[from~to]".
func parseTimeRange(v string) (from, to time.Time, err error) {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return from, to, errcode.ErrBadRequest.WithMessage("op_time must be [<from>~<to>], got %q", v)
	}
	lo, hi, ok := strings.Cut(v[1:len(v)-1], "~")
	if !ok {
		return from, to, errcode.ErrBadRequest.WithMessage("op_time must be [<from>~<to>], got %q", v)
	}
	if from, err = parseQueryTime(lo); err == nil {
		to, err = parseQueryTime(hi)
	}
	return from, to, err
}

func parseQueryTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errcode.ErrBadRequest.WithMessage("time %q is neither \"2006-01-02 15:04:05\" nor RFC 3339", s)
}
