package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/retention"
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

func (a *API) retentionRoutes() {
	m := a.mux
	m.HandleFunc("GET "+Prefix+"/retentions/metadatas", a.retentionMetadata)
	m.HandleFunc("POST "+Prefix+"/retentions", a.createRetention)
	m.HandleFunc("GET "+Prefix+"/retentions/{id}", a.getRetention)
	m.HandleFunc("PUT "+Prefix+"/retentions/{id}", a.updateRetention)
	m.HandleFunc("DELETE "+Prefix+"/retentions/{id}", a.deleteRetention)
	m.HandleFunc("POST "+Prefix+"/retentions/{id}/executions", a.startRetention)
	m.HandleFunc("GET "+Prefix+"/retentions/{id}/executions", a.listRetentionExecutions)
	m.HandleFunc("PATCH "+Prefix+"/retentions/{id}/executions/{eid}", a.stopRetention)
	m.HandleFunc("GET "+Prefix+"/retentions/{id}/executions/{eid}/tasks", a.listRetentionTasks)
	m.HandleFunc("GET "+Prefix+"/retentions/{id}/executions/{eid}/tasks/{tid}", a.getRetentionTaskLog)
}

// pathID reads a positive integer path value.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errcode.ErrBadRequest.WithMessage("%s must be a positive integer, got %q", name, r.PathValue(name))
	}
	return id, nil
}

// adminPolicy returns the stored policy of the path for an admin request.
func (a *API) adminPolicy(r *http.Request) (*meta.RetentionPolicy, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return nil, err
	}
	p, err := a.retentions.Store.GetRetentionPolicy(r.Context(), id)
	if err != nil {
		return nil, storeError(err, "retention policy "+strconv.FormatInt(id, 10))
	}
	return p, nil
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

func (a *API) createRetention(w http.ResponseWriter, r *http.Request) {
	if err := a.requireAdmin(r); err != nil {
		a.fail(w, r, err)
		return
	}
	p, body, err := a.readPolicy(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := a.createPolicy(r.Context(), p.Scope.Ref, body)
	if err != nil {
		a.fail(w, r, storeError(err, "retention policy"))
		return
	}
	w.Header().Set("Location", Prefix+"/retentions/"+strconv.FormatInt(id, 10))
	w.WriteHeader(http.StatusCreated)
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

func (a *API) getRetention(w http.ResponseWriter, r *http.Request) {
	row, err := a.adminPolicy(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var p retention.Policy
	if err := json.Unmarshal([]byte(row.Policy), &p); err != nil {
		a.fail(w, r, errcode.ErrInternal.Wrap(err, "stored retention policy %d is unreadable", row.ID))
		return
	}
	p.ID = row.ID
	writeJSON(w, http.StatusOK, &p)
}

func (a *API) updateRetention(w http.ResponseWriter, r *http.Request) {
	row, err := a.adminPolicy(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, body, err := a.readPolicy(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	oldProject := row.ProjectID
	row.ProjectID, row.Policy = p.Scope.Ref, body
	if err := a.retentions.Store.UpdateRetentionPolicy(r.Context(), row); err != nil {
		a.fail(w, r, storeError(err, "retention policy"))
		return
	}
	if oldProject != row.ProjectID {
		err = errors.Join(a.setRetentionID(r.Context(), oldProject, 0, row.ID), a.setRetentionID(r.Context(), row.ProjectID, row.ID, 0))
		if err != nil {
			a.fail(w, r, storeError(err, "project"))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (a *API) deleteRetention(w http.ResponseWriter, r *http.Request) {
	row, err := a.adminPolicy(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.retentions.Store.DeleteRetentionPolicy(r.Context(), row.ID); err != nil {
		a.fail(w, r, storeError(err, "retention policy"))
		return
	}
	if err := a.setRetentionID(r.Context(), row.ProjectID, 0, row.ID); err != nil && !errors.Is(err, meta.ErrNotFound) {
		a.fail(w, r, storeError(err, "project"))
		return
	}
	w.WriteHeader(http.StatusOK)
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

func (a *API) startRetention(w http.ResponseWriter, r *http.Request) {
	row, err := a.adminPolicy(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req struct {
		DryRun bool `json:"dry_run"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := a.retentions.Runner.Start(r.Context(), row.ID, req.DryRun)
	if errors.Is(err, meta.ErrConflict) {
		a.fail(w, r, errcode.ErrConflict.WithMessage("retention policy %d has an execution running", row.ID))
		return
	}
	if err != nil {
		a.fail(w, r, storeError(err, "retention policy"))
		return
	}
	w.Header().Set("Location", Prefix+"/retentions/"+strconv.FormatInt(row.ID, 10)+"/executions/"+strconv.FormatInt(e.ID, 10))
	w.WriteHeader(http.StatusCreated)
}

func (a *API) listRetentionExecutions(w http.ResponseWriter, r *http.Request) {
	row, err := a.adminPolicy(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, total, err := a.retentions.Store.ListRetentionExecutions(r.Context(), row.ID, pg.offset(), pg.size)
	if err != nil {
		a.fail(w, r, storeError(err, "retention executions"))
		return
	}
	out := make([]executionJSON, len(list))
	for i, e := range list {
		out[i] = toExecutionJSON(e)
	}
	setListHeaders(w, r, total, pg)
	writeJSON(w, http.StatusOK, out)
}

// adminExecution returns the execution of the path, which must belong to the policy of the path.
func (a *API) adminExecution(r *http.Request) (*meta.RetentionExecution, error) {
	row, err := a.adminPolicy(r)
	if err != nil {
		return nil, err
	}
	eid, err := pathID(r, "eid")
	if err != nil {
		return nil, err
	}
	e, err := a.retentions.Store.GetRetentionExecution(r.Context(), eid)
	if err == nil && e.PolicyID != row.ID {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, storeError(err, "retention execution "+strconv.FormatInt(eid, 10))
	}
	return e, nil
}

func (a *API) stopRetention(w http.ResponseWriter, r *http.Request) {
	e, err := a.adminExecution(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req struct {
		Action string `json:"action"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	if req.Action != "stop" {
		a.fail(w, r, errcode.ErrBadRequest.WithMessage("action must be \"stop\", not %q", req.Action))
		return
	}
	if err := a.retentions.Store.StopRetentionExecution(r.Context(), e.ID); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			a.fail(w, r, errcode.ErrBadRequest.WithMessage("retention execution %d is not running", e.ID))
			return
		}
		a.fail(w, r, storeError(err, "retention execution"))
		return
	}
	w.WriteHeader(http.StatusOK)
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

func (a *API) listRetentionTasks(w http.ResponseWriter, r *http.Request) {
	e, err := a.adminExecution(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, total, err := a.retentions.Store.ListRetentionTasks(r.Context(), e.ID, pg.offset(), pg.size)
	if err != nil {
		a.fail(w, r, storeError(err, "retention tasks"))
		return
	}
	out := make([]taskJSON, len(list))
	for i, t := range list {
		out[i] = taskJSON{ID: t.ID, ExecutionID: t.ExecutionID, Repository: t.Repository, JobID: strconv.FormatInt(t.ID, 10),
			Status: t.Status, StartTime: harborTime(t.StartTime), EndTime: optTime(t.EndTime), Total: t.Total, Retained: t.Retained}
	}
	setListHeaders(w, r, total, pg)
	writeJSON(w, http.StatusOK, out)
}

// getRetentionTaskLog answers the task's log as text, as Harbor does.
func (a *API) getRetentionTaskLog(w http.ResponseWriter, r *http.Request) {
	e, err := a.adminExecution(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tid, err := pathID(r, "tid")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.retentions.Store.GetRetentionTask(r.Context(), tid)
	if err == nil && t.ExecutionID != e.ID {
		err = meta.ErrNotFound
	}
	if err != nil {
		a.fail(w, r, storeError(err, "retention task "+strconv.FormatInt(tid, 10)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(t.Log)))
	_, _ = bytes.NewBufferString(t.Log).WriteTo(w)
}
