package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// testSessions: console sessions are found by key until they expire, deleted on demand, unique by key,
// and expired ones are removed by the next put.
func testSessions(t *testing.T, newDB dbFactory) {
	ctx := context.Background()
	s := newStore(t, newDB)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := &meta.Session{Key: "key-a", User: "admin", Admin: true, CSRF: "csrf-a", Expires: t0.Add(time.Hour)}
	require.NoError(t, s.PutSession(ctx, a, t0))
	got, err := s.GetSession(ctx, "key-a", t0.Add(59*time.Minute))
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.ErrorIs(t, s.PutSession(ctx, &meta.Session{Key: "key-a", User: "x", CSRF: "y", Expires: t0.Add(time.Hour)}, t0), meta.ErrConflict)

	_, err = s.GetSession(ctx, "key-a", t0.Add(time.Hour))
	require.ErrorIs(t, err, meta.ErrNotFound, "expired at its expiry time")
	_, err = s.GetSession(ctx, "absent", t0)
	require.ErrorIs(t, err, meta.ErrNotFound)

	b := &meta.Session{Key: "key-b", User: "dev", CSRF: "csrf-b", Expires: t0.Add(3 * time.Hour)}
	require.NoError(t, s.PutSession(ctx, b, t0.Add(2*time.Hour)))
	require.EqualValues(t, 1, countRows(t, s, "console_session"), "the put removed the expired session")
	got, err = s.GetSession(ctx, "key-b", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.False(t, got.Admin)
	require.NoError(t, s.DeleteSession(ctx, "key-b"))
	require.NoError(t, s.DeleteSession(ctx, "key-b"), "deleting an absent session")
	_, err = s.GetSession(ctx, "key-b", t0.Add(2*time.Hour))
	require.ErrorIs(t, err, meta.ErrNotFound)
}
