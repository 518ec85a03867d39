package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// GarbageCollector runs collections for the /system/gc endpoints; *gc.Runner implements it.
type GarbageCollector interface {
	// Start records and starts a run; gc.ErrRunning when one runs already on any node.
	Start(ctx context.Context, kind string, p gc.Params) (*meta.GCExecution, error)
	// Stop cancels a run of this node; gc.ErrNotRunningHere otherwise.
	Stop(id int64) error
}

// GCDeps are the garbage collection endpoints' dependencies (Deps.GC).
type GCDeps struct {
	Store  meta.GCStore
	Runner GarbageCollector
}

// gcHistoryJSON is Harbor's GCHistory.
type gcHistoryJSON struct {
	ID            int64          `json:"id,omitempty"`
	JobName       string         `json:"job_name"`
	JobKind       string         `json:"job_kind,omitempty"`
	JobParameters string         `json:"job_parameters,omitempty"`
	Schedule      *scheduleJSON  `json:"schedule,omitempty"`
	JobStatus     string         `json:"job_status,omitempty"`
	Deleted       bool           `json:"deleted"`
	CreationTime  *harborTime    `json:"creation_time,omitempty"`
	UpdateTime    *harborTime    `json:"update_time,omitempty"`
	Parameters    map[string]any `json:"parameters,omitempty"`
}

// scheduleJSON is Harbor's ScheduleObj.
type scheduleJSON struct {
	Type              string      `json:"type,omitempty"`
	Cron              string      `json:"cron,omitempty"`
	NextScheduledTime *harborTime `json:"next_scheduled_time,omitempty"`
}

func ht(t time.Time) *harborTime {
	if t.IsZero() {
		return nil
	}
	h := harborTime(t)
	return &h
}

func gcToJSON(e *meta.GCExecution) gcHistoryJSON {
	return gcHistoryJSON{ID: e.ID, JobName: "GARBAGE_COLLECTION", JobKind: e.Kind, JobParameters: e.Parameters,
		JobStatus: e.Status, CreationTime: ht(e.CreationTime), UpdateTime: ht(e.UpdateTime)}
}

// gcAdmin returns the garbage collection deps to the admin; the endpoints are admin only.
func (a *API) gcAdmin(r *http.Request) (*GCDeps, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	return a.gc, nil
}

func (a *API) listGC(w http.ResponseWriter, r *http.Request) error {
	d, err := a.gcAdmin(r)
	if err != nil {
		return err
	}
	return listPage(w, r, func(_ url.Values, pg paging.Page) ([]gcHistoryJSON, int64, error) {
		list, total, err := d.Store.ListGCExecutions(r.Context(), pg.Offset(), pg.Size)
		if err != nil {
			return nil, 0, err
		}
		return convert(list, gcToJSON), total, nil
	})
}

// gcExecution reads the execution named by the path, NOT_FOUND when there is none.
func (a *API) gcExecution(r *http.Request) (*GCDeps, int64, error) {
	d, err := a.gcAdmin(r)
	if err != nil {
		return nil, 0, err
	}
	id, err := admin.ParseID("garbage collection id", r.PathValue("id"))
	return d, id, err
}

func gcNotFound(err error, id int64) error {
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.ErrNotFound.WithMessage("garbage collection %d not found", id)
	}
	return err
}

func (a *API) getGC(w http.ResponseWriter, r *http.Request) error {
	d, id, err := a.gcExecution(r)
	if err == nil {
		var e *meta.GCExecution
		if e, err = d.Store.GetGCExecution(r.Context(), id); err == nil {
			return writeOK(w, gcToJSON(e))
		}
	}
	return gcNotFound(err, id)
}

func (a *API) getGCLog(w http.ResponseWriter, r *http.Request) error {
	d, id, err := a.gcExecution(r)
	if err == nil {
		var text string
		if text, err = d.Store.GCExecutionLog(r.Context(), id); err == nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(text)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(text))
			return nil
		}
	}
	return gcNotFound(err, id)
}

// stopGC is Harbor's PUT /system/gc/{id}: stop a running collection (only the node running it can).
func (a *API) stopGC(w http.ResponseWriter, r *http.Request) error {
	d, id, err := a.gcExecution(r)
	if err == nil {
		_, err = d.Store.GetGCExecution(r.Context(), id)
	}
	if err != nil {
		return gcNotFound(err, id)
	}
	if err := d.Runner.Stop(id); errors.Is(err, gc.ErrNotRunningHere) {
		return errcode.ErrPreconditions.WithMessage("garbage collection %d is not running on this node", id)
	}
	return emptyOK(w)
}

func (a *API) getGCSchedule(w http.ResponseWriter, r *http.Request) error {
	d, err := a.gcAdmin(r)
	if err != nil {
		return err
	}
	sc, err := d.Store.GetGCSchedule(r.Context())
	if errors.Is(err, meta.ErrNotFound) {
		return writeOK(w, gcHistoryJSON{JobName: "GARBAGE_COLLECTION", Schedule: &scheduleJSON{Type: gc.ScheduleNone}})
	}
	if err != nil {
		return err
	}
	var params map[string]any
	_ = json.Unmarshal([]byte(sc.Parameters), &params) // written by putGCSchedule from gc.Params
	writeJSON(w, http.StatusOK, gcHistoryJSON{
		JobName: "GARBAGE_COLLECTION", JobKind: meta.GCKindSchedule, JobParameters: sc.Parameters, Parameters: params,
		Schedule:     &scheduleJSON{Type: sc.Type, Cron: sc.Cron, NextScheduledTime: ht(gc.NextFire(sc.Cron, time.Now()))},
		CreationTime: ht(sc.CreationTime), UpdateTime: ht(sc.UpdateTime),
	})
	return nil
}

// gcScheduleReq is Harbor's Schedule body.
type gcScheduleReq struct {
	Schedule *struct {
		Type string `json:"type"`
		Cron string `json:"cron"`
	} `json:"schedule"`
	Parameters *gc.Params `json:"parameters"`
}

// putGCSchedule serves POST and PUT /system/gc/schedule: type Manual starts a run now (201 with its
// Location), any other type sets the schedule (201 for POST, 200 for PUT).
func (a *API) putGCSchedule(w http.ResponseWriter, r *http.Request) error {
	d, req, err := authorizedBody[gcScheduleReq](w, r, a.gcAdmin)
	if err != nil {
		return err
	}
	if req.Schedule == nil {
		return errcode.ErrBadRequest.WithMessage("schedule is required")
	}
	var p gc.Params
	if req.Parameters != nil {
		p = *req.Parameters
	}
	if err := p.Validate(); err != nil {
		return errcode.ErrBadRequest.WithMessage("%s", err.Error())
	}
	if req.Schedule.Type == gc.ScheduleManual {
		e, err := d.Runner.Start(r.Context(), meta.GCKindManual, p)
		if errors.Is(err, gc.ErrRunning) {
			err = errcode.ErrConflict.WithMessage("%s", err.Error())
		}
		if err != nil {
			return err
		}
		return created(w, Prefix+"/system/gc/"+strconv.FormatInt(e.ID, 10))
	}
	expr, err := gc.ScheduleCron(req.Schedule.Type, req.Schedule.Cron)
	if err != nil {
		return errcode.ErrBadRequest.WithMessage("%s", err.Error())
	}
	if err := d.Store.PutGCSchedule(r.Context(), &meta.GCSchedule{Type: req.Schedule.Type, Cron: expr, Parameters: p.String()}); err != nil {
		return err
	}
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	return emptyOK(w)
}
