package robot_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/robot"
)

// TestVerifier checks robot logins against a real (SQLite) store: the secret, expiry, disabling and
// deletion, through Basic and through the token subject check.
func TestVerifier(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "berth.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	secret, err := robot.NewSecret()
	require.NoError(t, err)
	hash, err := robot.HashSecret(secret)
	require.NoError(t, err)
	add := func(name string, expires time.Time) *meta.Robot {
		r := &meta.Robot{Name: name, Level: meta.RobotLevelSystem, SecretHash: hash, Duration: 1, ExpiresAt: expires,
			Permissions: []meta.RobotPermission{{Kind: "project", Namespace: "*", Access: []meta.RobotAccess{{Resource: "repository", Action: "pull"}}}}}
		_, err := store.CreateRobot(ctx, r)
		require.NoError(t, err)
		return r
	}
	live := add("live", time.Now().Add(time.Hour))
	add("old", time.Now().Add(-time.Second))

	v := robot.NewVerifier(store, "bot$", 0)
	p, ok, err := v.VerifyBasic(ctx, "bot$live", secret)
	require.True(t, ok)
	require.NoError(t, err)
	require.Equal(t, "bot$live", p.Name)
	require.True(t, p.Robot)
	require.True(t, p.Limit.Allows(&meta.Project{Name: "any"}, "any/x", auth.Pull))
	for _, tc := range []struct{ name, secret string }{{"bot$live", "Wrong-secret-1"}, {"bot$old", secret}, {"bot$none", secret}, {"bot$", secret}} {
		_, _, err := v.VerifyBasic(ctx, tc.name, tc.secret)
		require.ErrorIs(t, err, auth.ErrBadCredentials, tc.name)
	}
	require.NoError(t, v.Active(ctx, "bot$live"))
	require.NoError(t, v.Active(ctx, "admin"), "not a robot")
	require.ErrorIs(t, v.Active(ctx, "bot$old"), auth.ErrBadCredentials)

	live.Disabled = true
	require.NoError(t, store.UpdateRobot(ctx, live))
	_, _, err = v.VerifyBasic(ctx, "bot$live", secret)
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	require.ErrorIs(t, v.Active(ctx, "bot$live"), auth.ErrBadCredentials)

	// With a TTL, Active reuses its answer for that long only.
	cached := robot.NewVerifier(store, "bot$", time.Hour)
	require.ErrorIs(t, cached.Active(ctx, "bot$live"), auth.ErrBadCredentials)
	live.Disabled = false
	require.NoError(t, store.UpdateRobot(ctx, live))
	require.ErrorIs(t, cached.Active(ctx, "bot$live"), auth.ErrBadCredentials, "cached")
	require.NoError(t, v.Active(ctx, "bot$live"), "uncached")
}
