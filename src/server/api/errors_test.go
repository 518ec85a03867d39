package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

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
