package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/server/paging"
)

// RetentionRunner starts executions (retention.Service).
type RetentionRunner interface {
	// Start records a running execution of the policy and runs it in the background. meta.ErrConflict
	// when one is running.
	Start(ctx context.Context, policyID int64, dryRun bool) (*meta.RetentionExecution, error)
}

// Retentions are the retention endpoints' dependencies.
type Retentions struct {
	Store  meta.RetentionStore
	Runner RetentionRunner
}

// adminPolicy returns the stored policy of the path for an admin request.
func (a *API) adminPolicy(r *http.Request) (*meta.RetentionPolicy, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	return pathItem(r, "id", "retention policy", a.retentions.Store.GetRetentionPolicy, nil)
}

// readPolicy decodes and validates a policy body; its scope must name an existing project.
func (a *API) readPolicy(w http.ResponseWriter, r *http.Request) (*retention.Policy, string, error) {
	var p retention.Policy
	if err := decodeBody(w, r, &p); err != nil {
		return nil, "", err
	}
	if err := p.Validate(); err != nil {
		return nil, "", errcode.ErrBadRequest.WithMessage("invalid retention policy: %v", err)
	}
	if _, err := a.projects.GetProject(r.Context(), p.Scope.Ref); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return nil, "", errcode.ErrBadRequest.WithMessage("scope.ref: project %d does not exist", p.Scope.Ref)
		}
		return nil, "", storeError(err, "project")
	}
	p.ID = 0
	b, err := json.Marshal(&p)
	if err != nil {
		return nil, "", errcode.ErrInternal.Wrap(err, "encoding the policy")
	}
	return &p, string(b), nil
}

func (a *API) createRetention(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	p, body, err := a.readPolicy(w, r)
	if err != nil {
		return err
	}
	id, err := a.createPolicy(r.Context(), p.Scope.Ref, body)
	if err != nil {
		return storeError(err, "retention policy")
	}
	return created(w, Prefix+"/retentions/"+strconv.FormatInt(id, 10))
}

// createPolicy stores a policy and points the project's retention_id at it.
func (a *API) createPolicy(ctx context.Context, projectID int64, body string) (int64, error) {
	return retention.CreatePolicy(ctx, a.projects, a.retentions.Store, projectID, body)
}

// setRetentionID sets the project's retention_id to id, or removes it when id is 0 and it names old.
func (a *API) setRetentionID(ctx context.Context, projectID, id, old int64) error {
	return retention.SetRetentionID(ctx, a.projects, projectID, id, old)
}

// createDefaultRetention gives a new proxy-cache project Harbor's default policy: retain what was
// pulled within 7 days. A failure is logged: the project exists and the operator can add a policy.
func (a *API) createDefaultRetention(ctx context.Context, p *meta.Project) {
	if _, err := retention.CreateDefaultPolicy(ctx, a.projects, a.retentions.Store, p); err != nil {
		a.log.ErrorContext(ctx, "creating the default retention policy of a proxy-cache project failed", "project", p.Name, "err", err)
	}
}

func (a *API) getRetention(w http.ResponseWriter, r *http.Request) error {
	row, err := a.adminPolicy(r)
	if err != nil {
		return err
	}
	var p retention.Policy
	if err := json.Unmarshal([]byte(row.Policy), &p); err != nil {
		return errcode.ErrInternal.Wrap(err, "stored retention policy %d is unreadable", row.ID)
	}
	p.ID = row.ID
	return writeOK(w, &p)
}

func (a *API) updateRetention(w http.ResponseWriter, r *http.Request) error {
	row, err := a.adminPolicy(r)
	if err != nil {
		return err
	}
	p, body, err := a.readPolicy(w, r)
	if err != nil {
		return err
	}
	oldProject := row.ProjectID
	row.ProjectID, row.Policy = p.Scope.Ref, body
	if err := a.retentions.Store.UpdateRetentionPolicy(r.Context(), row); err != nil {
		return storeError(err, "retention policy")
	}
	if oldProject != row.ProjectID {
		err = errors.Join(a.setRetentionID(r.Context(), oldProject, 0, row.ID), a.setRetentionID(r.Context(), row.ProjectID, row.ID, 0))
		if err != nil {
			return storeError(err, "project")
		}
	}
	return emptyOK(w)
}

func (a *API) deleteRetention(w http.ResponseWriter, r *http.Request) error {
	row, err := a.adminPolicy(r)
	if err != nil {
		return err
	}
	if err := a.retentions.Store.DeleteRetentionPolicy(r.Context(), row.ID); err != nil {
		return storeError(err, "retention policy")
	}
	if err := a.setRetentionID(r.Context(), row.ProjectID, 0, row.ID); err != nil && !errors.Is(err, meta.ErrNotFound) {
		return storeError(err, "project")
	}
	return emptyOK(w)
}

// executionJSON is Harbor's RetentionExecution.
type executionJSON struct {
	ID        int64       `json:"id"`
	PolicyID  int64       `json:"policy_id"`
	StartTime harborTime  `json:"start_time"`
	EndTime   *harborTime `json:"end_time,omitempty"`
	Status    string      `json:"status"`
	Trigger   string      `json:"trigger"`
	DryRun    bool        `json:"dry_run"`
}

func toExecutionJSON(e *meta.RetentionExecution) executionJSON {
	out := executionJSON{ID: e.ID, PolicyID: e.PolicyID, StartTime: harborTime(e.StartTime), Status: e.Status,
		Trigger: e.Trigger, DryRun: e.DryRun}
	out.EndTime = optTime(e.EndTime)
	return out
}

func optTime(t time.Time) *harborTime {
	if t.IsZero() {
		return nil
	}
	h := harborTime(t)
	return &h
}

// retentionRunReq is the body of POST /retentions/{id}/executions.
type retentionRunReq struct {
	DryRun bool `json:"dry_run"`
}

func (a *API) startRetention(w http.ResponseWriter, r *http.Request) error {
	row, req, err := authorizedBody[retentionRunReq](w, r, a.adminPolicy)
	if err != nil {
		return err
	}
	e, err := a.retentions.Runner.Start(r.Context(), row.ID, req.DryRun)
	if errors.Is(err, meta.ErrConflict) {
		return errcode.ErrConflict.WithMessage("retention policy %d has an execution running", row.ID)
	}
	if err != nil {
		return storeError(err, "retention policy")
	}
	return created(w, Prefix+"/retentions/"+strconv.FormatInt(row.ID, 10)+"/executions/"+strconv.FormatInt(e.ID, 10))
}

func (a *API) listRetentionExecutions(w http.ResponseWriter, r *http.Request) error {
	row, err := a.adminPolicy(r)
	if err != nil {
		return err
	}
	return listPage(w, r, func(_ url.Values, pg paging.Page) ([]executionJSON, int64, error) {
		list, total, err := a.retentions.Store.ListRetentionExecutions(r.Context(), row.ID, pg.Offset(), pg.Size)
		return listed(list, total, err, "retention executions", toExecutionJSON)
	})
}

// adminExecution returns the execution of the path, which must belong to the policy of the path.
func (a *API) adminExecution(r *http.Request) (*meta.RetentionExecution, error) {
	row, err := a.adminPolicy(r)
	if err != nil {
		return nil, err
	}
	return pathItem(r, "eid", "retention execution", a.retentions.Store.GetRetentionExecution,
		func(e *meta.RetentionExecution) bool { return e.PolicyID == row.ID })
}

// retentionActionReq is the body of PATCH /retentions/{id}/executions/{eid}.
type retentionActionReq struct {
	Action string `json:"action"`
}

func (a *API) stopRetention(w http.ResponseWriter, r *http.Request) error {
	e, req, err := authorizedBody[retentionActionReq](w, r, a.adminExecution)
	if err != nil {
		return err
	}
	if req.Action != "stop" {
		return errcode.ErrBadRequest.WithMessage("action must be \"stop\", not %q", req.Action)
	}
	if err := a.retentions.Store.StopRetentionExecution(r.Context(), e.ID); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return errcode.ErrBadRequest.WithMessage("retention execution %d is not running", e.ID)
		}
		return storeError(err, "retention execution")
	}
	return emptyOK(w)
}

// taskJSON is Harbor's RetentionExecutionTask.
type taskJSON struct {
	ID             int64       `json:"id"`
	ExecutionID    int64       `json:"execution_id"`
	Repository     string      `json:"repository"`
	JobID          string      `json:"job_id"`
	Status         string      `json:"status"`
	StatusCode     int64       `json:"status_code"`
	StatusRevision int64       `json:"status_revision"`
	StartTime      harborTime  `json:"start_time"`
	EndTime        *harborTime `json:"end_time,omitempty"`
	Total          int64       `json:"total"`
	Retained       int64       `json:"retained"`
}

func (a *API) listRetentionTasks(w http.ResponseWriter, r *http.Request) error {
	e, err := a.adminExecution(r)
	if err != nil {
		return err
	}
	return listPage(w, r, func(_ url.Values, pg paging.Page) ([]taskJSON, int64, error) {
		list, total, err := a.retentions.Store.ListRetentionTasks(r.Context(), e.ID, pg.Offset(), pg.Size)
		return listed(list, total, err, "retention tasks", toTaskJSON)
	})
}

func toTaskJSON(t *meta.RetentionTask) taskJSON {
	return taskJSON{ID: t.ID, ExecutionID: t.ExecutionID, Repository: t.Repository, JobID: strconv.FormatInt(t.ID, 10),
		Status: t.Status, StartTime: harborTime(t.StartTime), EndTime: optTime(t.EndTime), Total: t.Total, Retained: t.Retained}
}

// getRetentionTaskLog answers the log of the task of the path, which must belong to the execution of the
// path, as text, as Harbor does.
func (a *API) getRetentionTaskLog(w http.ResponseWriter, r *http.Request) error {
	e, err := a.adminExecution(r)
	if err != nil {
		return err
	}
	t, err := pathItem(r, "tid", "retention task", a.retentions.Store.GetRetentionTask,
		func(t *meta.RetentionTask) bool { return t.ExecutionID == e.ID })
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(t.Log)))
	_, _ = bytes.NewBufferString(t.Log).WriteTo(w)
	return nil
}
