package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

func registryID(r *http.Request) (int64, error) {
	return admin.ParseID("registry id", r.PathValue("id"))
}

// adminRegistry returns the registry of the path for an admin request.
func (a *API) adminRegistry(r *http.Request) (*meta.Registry, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	id, err := registryID(r)
	if err != nil {
		return nil, err
	}
	reg, err := a.registries.GetRegistry(r.Context(), id)
	if err != nil {
		return nil, storeError(err, "registry "+strconv.FormatInt(id, 10))
	}
	return reg, nil
}

func (a *API) setStatus(id int64, err error) {
	if err != nil {
		a.status.Store(id, statusUnhealthy)
	} else {
		a.status.Store(id, statusHealthy)
	}
}

func (a *API) listRegistries(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]registryJSON, int64, error) {
		regs, total, err := a.registries.ListRegistries(r.Context(), q.Get("name"), pg.Offset(), pg.Size)
		return listed(regs, total, err, "registry", a.registryToJSON)
	})
}

func (a *API) getRegistry(w http.ResponseWriter, r *http.Request) error {
	reg, err := a.adminRegistry(r)
	if err != nil {
		return err
	}
	return writeOK(w, a.registryToJSON(reg))
}

// createRegistry validates the registry, checks that it answers (as Harbor does), seals the secret and
// stores it: 201 with Location.
func (a *API) createRegistry(w http.ResponseWriter, r *http.Request) error {
	var req registryReq
	if err := a.adminBody(w, r, &req); err != nil {
		return err
	}
	var reg meta.Registry
	var plain string
	if s := req.apply(&reg); s != nil {
		plain = *s
	}
	if err := a.creds.Prepare(r.Context(), &reg, plain); err != nil {
		return err
	}
	id, err := a.registries.CreateRegistry(r.Context(), &reg)
	if err != nil {
		return storeError(err, "a registry named "+reg.Name)
	}
	a.setStatus(id, nil)
	a.recordFor(r, reg.Name, "registry", "create")
	return created(w, strings.TrimSuffix(r.URL.Path, "/")+"/"+strconv.FormatInt(id, 10))
}

// updateRegistry applies the fields present; an absent or "*****" secret keeps the stored one, except
// when the destination changes (admin.SecretBound): then the stored secret is never sent to the new URL, and the
// update is BAD_REQUEST unless it brings a credential. The upstream is checked again when a connection
// setting changed.
func (a *API) updateRegistry(w http.ResponseWriter, r *http.Request) error {
	old, req, err := authorizedBody[registryReq](w, r, a.adminRegistry)
	if err != nil {
		return err
	}
	reg := *old
	newSecret := req.apply(&reg)
	changed, err := a.creds.PrepareUpdate(r.Context(), old, &reg, newSecret)
	if err != nil {
		return err
	}
	if err := a.registries.UpdateRegistry(r.Context(), &reg); err != nil {
		what := "registry " + strconv.FormatInt(reg.ID, 10)
		if errors.Is(err, meta.ErrConflict) {
			what = "a registry named " + reg.Name
		}
		return storeError(err, what)
	}
	if changed {
		a.setStatus(reg.ID, nil)
	}
	a.recordFor(r, reg.Name, "registry", "update")
	return emptyOK(w)
}

// deleteRegistry refuses with PRECONDITION (412) while a project uses the registry, as Harbor does.
func (a *API) deleteRegistry(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	id, err := registryID(r)
	if err != nil {
		return err
	}
	err = a.registries.DeleteRegistry(r.Context(), id)
	switch {
	case errors.Is(err, meta.ErrConflict):
		return errcode.ErrPreconditions.WithMessage(
			"the registry %d is referenced by proxy cache project, cannot delete it", id)
	case err != nil:
		return storeError(err, "registry "+strconv.FormatInt(id, 10))
	}
	a.status.Delete(id)
	a.recordFor(r, strconv.FormatInt(id, 10), "registry", "delete")
	return emptyOK(w)
}

// pingRegistry checks a stored registry ({"id"}), a stored one with some settings replaced, or settings
// alone ({"type","url",...}): 200 when it answers, 400 with the reason otherwise. A stored secret is only
// used at the destination it was saved with (admin.SecretBound): a ping of a stored registry at another URL needs
// the credential in the request.
func (a *API) pingRegistry(w http.ResponseWriter, r *http.Request) error {
	var req registryReq
	if err := a.adminBody(w, r, &req); err != nil {
		return err
	}
	var reg meta.Registry
	stored := &meta.Registry{}
	if req.ID != nil && *req.ID != 0 {
		var err error
		if stored, err = a.registries.GetRegistry(r.Context(), *req.ID); err != nil {
			return storeError(err, "registry "+strconv.FormatInt(*req.ID, 10))
		}
		reg = *stored
	}
	newSecret := req.apply(&reg)
	err := a.creds.Ping(r.Context(), stored, &reg, newSecret)
	if reg.ID != 0 && !req.hasSettings() {
		a.setStatus(reg.ID, err)
	}
	if err != nil {
		return err
	}
	return emptyOK(w)
}
