package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// pingResult is the latest connection test of a registry made in this process.
type pingResult struct {
	At    time.Time
	Error string // "" when the registry answered
}

// registryRow is a registry as the console shows it: the secret only as "set" or not.
type registryRow struct {
	*meta.Registry
	HasSecret bool
	Ping      *pingResult
}

func (c *Console) registryRow(r *meta.Registry) registryRow {
	// A copy without the sealed secret: the templates cannot show what they do not get.
	row := registryRow{HasSecret: r.AccessSecret != "", Registry: &meta.Registry{ID: r.ID, Name: r.Name, Type: r.Type,
		URL: r.URL, Description: r.Description, Insecure: r.Insecure, CredentialType: r.CredentialType, AccessKey: r.AccessKey}}
	if v, ok := c.pings.Load(r.ID); ok {
		pr := v.(pingResult)
		row.Ping = &pr
	}
	return row
}

func (c *Console) listRegistries(q *request) error {
	if !q.admin() {
		return errcode.ErrAPIUnauth.WithMessage("log in as the admin to manage registries")
	}
	_, list, err := c.registriesByID(q.r.Context())
	if err != nil {
		return err
	}
	rows := make([]registryRow, len(list))
	for i, r := range list {
		rows[i] = c.registryRow(r)
	}
	c.render(q, http.StatusOK, "registries", map[string]any{"Title": "Registries", "Registries": rows,
		"Types": admin.RegistryTypes()})
	return nil
}

// adminRegistry returns the registry of the path for the admin.
func (c *Console) adminRegistry(q *request) (*meta.Registry, error) {
	if !q.admin() {
		return nil, errcode.ErrAPIUnauth.WithMessage("log in as the admin to manage registries")
	}
	id, err := strconv.ParseInt(q.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, errcode.ErrNotFound.WithMessage("no registry %q", q.r.PathValue("id"))
	}
	r, err := c.d.Registries.GetRegistry(q.r.Context(), id)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, errcode.ErrNotFound.WithMessage("registry %d not found", id)
	}
	if err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "reading registry")
	}
	return r, nil
}

func (c *Console) editRegistry(q *request) error {
	r, err := c.adminRegistry(q)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "registry", map[string]any{"Title": "Registry " + r.Name, "R": c.registryRow(r),
		"Types": admin.RegistryTypes()})
	return nil
}

// fromForm applies the form to r and returns the plaintext secret to use: the form's, or the stored
// one (opened) when the form leaves it empty.
func (c *Console) fromForm(q *request, r *meta.Registry) (string, error) {
	f := q.r.PostForm
	r.Name, r.Type, r.URL = strings.TrimSpace(f.Get("name")), f.Get("type"), strings.TrimSpace(f.Get("url"))
	r.Description, r.Insecure = f.Get("description"), f.Get("insecure") == "on"
	r.AccessKey, r.CredentialType = strings.TrimSpace(f.Get("access_key")), "basic"
	if err := admin.ValidateRegistry(r, true); err != nil {
		return "", err
	}
	if s := f.Get("access_secret"); s != "" {
		return s, nil
	}
	return c.creds.Open(r)
}

// check pings the registry with the plaintext secret and records the outcome under id (when not 0).
func (c *Console) check(ctx context.Context, id int64, r meta.Registry, plain string) error {
	r.AccessSecret = plain
	ctx, cancel := context.WithTimeout(ctx, admin.PingTimeout)
	defer cancel()
	err := c.d.Pinger.PingRegistry(ctx, r)
	if id > 0 {
		res := pingResult{At: c.d.Now().UTC()}
		if err != nil {
			res.Error = err.Error()
		}
		c.pings.Store(id, res)
	}
	if err != nil {
		return errcode.ErrBadRequest.WithMessage("the registry did not answer: %v", err)
	}
	return nil
}

// save seals the secret and stores r (creating it when r.ID is 0).
func (c *Console) save(ctx context.Context, r *meta.Registry, plain string) error {
	sealed, err := c.creds.Seal(plain)
	if err != nil {
		return err
	}
	r.AccessSecret = sealed
	if r.ID == 0 {
		var id int64
		if id, err = c.d.Registries.CreateRegistry(ctx, r); err == nil {
			r.ID = id
		}
	} else {
		err = c.d.Registries.UpdateRegistry(ctx, r)
	}
	if errors.Is(err, meta.ErrConflict) {
		return errcode.ErrConflict.WithMessage("a registry named %s already exists", r.Name)
	}
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "saving registry")
	}
	return nil
}

// createRegistry checks that the endpoint answers (as the API does) before it stores it.
func (c *Console) createRegistry(q *request) error {
	if !q.admin() {
		return errcode.ErrForbidden.WithMessage("only the admin may add registries")
	}
	r := &meta.Registry{}
	plain, err := c.fromForm(q, r)
	if err != nil {
		return err
	}
	if err := c.check(q.r.Context(), 0, *r, plain); err != nil {
		return err
	}
	if err := c.save(q.r.Context(), r, plain); err != nil {
		return err
	}
	c.pings.Store(r.ID, pingResult{At: c.d.Now().UTC()})
	return redirect(q, "/registries")
}

func (c *Console) updateRegistry(q *request) error {
	r, err := c.adminRegistry(q)
	if err != nil {
		return err
	}
	plain, err := c.fromForm(q, r)
	if err != nil {
		return err
	}
	if err := c.check(q.r.Context(), r.ID, *r, plain); err != nil {
		return err
	}
	if err := c.save(q.r.Context(), r, plain); err != nil {
		return err
	}
	return redirect(q, "/registries")
}

// pingRegistry tests the stored registry's connection and returns to ?next (the registries or cache page).
func (c *Console) pingRegistry(q *request) error {
	r, err := c.adminRegistry(q)
	if err != nil {
		return err
	}
	plain, err := c.creds.Open(r)
	if err != nil {
		return err
	}
	_ = c.check(q.r.Context(), r.ID, *r, plain) // the outcome is recorded and shown on the page
	return redirect(q, safeNext(q.r.PostFormValue("next")))
}
