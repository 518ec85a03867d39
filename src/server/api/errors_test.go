package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// errDB is what a database driver says when the database is down: it names internal addresses.
var errDB = errors.New("dial tcp 10.66.77.88:5432: connect: connection refused")

// brokenStore fails every call it overrides with errDB.
type brokenStore struct{ roles }

func (brokenStore) GetProject(context.Context, int64) (*meta.Project, error) { return nil, errDB }
func (brokenStore) GetProjectByName(context.Context, string) (*meta.Project, error) {
	return nil, errDB
}
func (brokenStore) ListProjects(context.Context, string, int, int) ([]*meta.Project, int64, error) {
	return nil, 0, errDB
}
func (brokenStore) CreateProject(context.Context, *meta.Project) (int64, error)   { return 0, errDB }
func (brokenStore) GetRegistry(context.Context, int64) (*meta.Registry, error)    { return nil, errDB }
func (brokenStore) CreateRegistry(context.Context, *meta.Registry) (int64, error) { return 0, errDB }
func (brokenStore) ListRegistries(context.Context, string, int, int) ([]*meta.Registry, int64, error) {
	return nil, 0, errDB
}
func (brokenStore) DeleteRegistry(context.Context, int64) error { return errDB }

// TestInternalErrorsStayInTheLog: with the database down, every endpoint answers 500 with a generic
// message; the driver's error, which names the database's address, is only logged.
func TestInternalErrorsStayInTheLog(t *testing.T) {
	e := newEnvWith(t, brokenStore{newFakeStore()})
	cases := []struct{ method, path, body string }{
		{http.MethodGet, projects, ""},
		{http.MethodGet, projects + "/1", ""},
		{http.MethodPost, projects, `{"project_name":"p"}`},
		{http.MethodGet, projects + "/1/metadatas", ""},
		{http.MethodGet, registries, ""},
		{http.MethodGet, registries + "/1", ""},
		{http.MethodPost, registries, `{"name":"r","type":"harbor","url":"https://r.example"}`},
		{http.MethodPost, registries + "/ping", `{"id":1}`},
		{http.MethodDelete, registries + "/1", ""},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		w := e.must(req{method: tc.method, path: tc.path, body: body}, http.StatusInternalServerError)
		require.Equal(t, "INTERNAL_SERVER_ERROR", errCode(t, w), "%s %s", tc.method, tc.path)
	}
	require.NotContains(t, e.bodies.String(), "10.66.77.88")
	require.NotContains(t, e.bodies.String(), "dial tcp")
	require.Contains(t, e.logs.String(), "10.66.77.88", "the cause is logged")
}

// TestHandleWritesTheError: handle answers a returned *errcode.Error with its status in Harbor's shape,
// any other error as a 500 whose text stays in the log, and leaves a handler's own answer alone.
func TestHandleWritesTheError(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{errcode.ErrConflict.WithMessage("taken"), http.StatusConflict, "CONFLICT"},
		{errcode.ErrBadRequest.WithMessage("bad"), http.StatusBadRequest, "BAD_REQUEST"},
		{errors.New("dial tcp 10.1.2.3:5432"), http.StatusInternalServerError, "UNKNOWN"},
		{nil, http.StatusTeapot, ""},
	}
	for _, tc := range cases {
		h := e.api.handle(func(w http.ResponseWriter, _ *http.Request) error {
			if tc.err == nil {
				w.WriteHeader(http.StatusTeapot)
			}
			return tc.err
		})
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodGet, Prefix+"/x", nil))
		require.Equal(t, tc.status, w.Code, "%v", tc.err)
		if tc.code != "" {
			require.Equal(t, tc.code, errCode(t, w))
			require.NotContains(t, w.Body.String(), "10.1.2.3")
		}
	}
}
