package robot_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/robot"
)

func TestAccess(t *testing.T) {
	a := robot.Access{
		{Kind: "project", Namespace: "a", Access: []meta.RobotAccess{{Resource: "repository", Action: "pull"}}},
		{Kind: "project", Namespace: "*", Access: []meta.RobotAccess{{Resource: "artifact", Action: "delete"}, {Resource: "repository", Action: "push", Effect: "deny"}}},
	}
	pa, pb := &meta.Project{Name: "a"}, &meta.Project{Name: "b"}
	require.True(t, a.Allows(pa, "a/x", auth.Pull))
	require.False(t, a.Allows(pb, "b/x", auth.Pull))
	require.False(t, a.Allows(pa, "a/x", auth.Push), "deny grants nothing")
	require.True(t, a.Allows(pb, "b/x", auth.Delete), "artifact:delete on *")

	// Through auth: a robot reads public projects too, and is DENIED (403) the rest.
	a2 := auth.NewAuthenticator("pw")
	ctx := context.Background()
	p := auth.Principal{Name: "robot$x", Robot: true, Limit: a}
	require.NoError(t, a2.AuthorizeRepository(ctx, p, pa, "a/x", auth.Pull))
	pub := &meta.Project{Name: "pub", Metadata: map[string]string{meta.MetaPublic: "true"}}
	require.NoError(t, a2.AuthorizeRepository(ctx, p, pub, "pub/x", auth.Pull))
	require.Error(t, a2.AuthorizeRepository(ctx, p, pub, "pub/x", auth.Push))
	err := a2.AuthorizeRepository(ctx, p, pb, "b/x", auth.Pull)
	require.ErrorContains(t, err, "denied")
	p.Token = true
	require.ErrorContains(t, a2.AuthorizeRepository(ctx, p, pb, "b/x", auth.Pull), "token")
}

func TestSecrets(t *testing.T) {
	s, err := robot.NewSecret()
	require.NoError(t, err)
	require.Len(t, s, 32)
	require.NoError(t, robot.ValidSecret(s))
	for _, bad := range []string{"Short1", "alllowercase123", "ALLUPPER123", "NoDigitsHere"} {
		require.Error(t, robot.ValidSecret(bad), bad)
	}
	h1, err := robot.HashSecret(s)
	require.NoError(t, err)
	h2, err := robot.HashSecret(s)
	require.NoError(t, err)
	require.NotEqual(t, h1, h2, "salted")
	require.NotContains(t, h1, s)
}

func TestUsable(t *testing.T) {
	now := time.Now()
	require.NoError(t, robot.Usable(&meta.Robot{}, now))
	require.NoError(t, robot.Usable(&meta.Robot{ExpiresAt: now.Add(time.Second)}, now))
	require.ErrorIs(t, robot.Usable(&meta.Robot{ExpiresAt: now}, now), auth.ErrBadCredentials)
	require.ErrorIs(t, robot.Usable(&meta.Robot{Disabled: true}, now), auth.ErrBadCredentials)
}
