package api

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
)

// openSQLite opens a meta store in a SQLite file of the test's own, closed when the test ends.
func openSQLite(t *testing.T) meta.Store {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "berth.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, store.Close()) })
	return store
}

// newAPIOn builds an API on store with the dependencies of newEnvWith plus those set adds, and an env
// whose requests go to it.
func newAPIOn(t *testing.T, store meta.Store, set func(d *Deps)) (*API, *env) {
	t.Helper()
	e := newEnvWith(t, store)
	d := Deps{Projects: store, Registries: store, Repositories: store, Box: e.box,
		Auth: auth.NewAuthenticator(adminPassword), Pinger: e.pinger, Log: slog.New(slog.DiscardHandler)}
	set(&d)
	var err error
	e.api, err = New(d)
	require.NoError(t, err)
	return e.api, e
}

// newSQLiteEnv builds an env on a real meta store in a SQLite file of the test's own.
func newSQLiteEnv(t *testing.T, health ...Component) *env {
	t.Helper()
	ctx := context.Background()
	store := openSQLite(t)
	e := newEnvWith(t, store, health...)
	n := 0
	e.addRepo = func(projectID int64) {
		p, err := store.GetProject(ctx, projectID)
		require.NoError(t, err)
		n++
		digest := fmt.Sprintf("sha256:%064x", n)
		require.NoError(t, store.LinkBlob(ctx, projectID, fmt.Sprintf("%s/repo%d", p.Name, n), digest, 1))
	}
	return e
}

func TestSQLiteHealth(t *testing.T) {
	store := openSQLite(t) // closed below; a second Close at cleanup is harmless
	e := newEnvWith(t, newFakeStore(), Component{Name: "database", Checker: store})
	require.Contains(t, e.must(req{method: "GET", path: "/api/v2.0/health"}, 200).Body.String(),
		`{"name":"database","status":"healthy"}`)
	require.NoError(t, store.Close())
	body := e.must(req{method: "GET", path: "/api/v2.0/health"}, 200).Body.String()
	require.Contains(t, body, `"status":"unhealthy"`)
}
