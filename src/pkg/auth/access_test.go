package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
)

// storeEnv is an Authenticator over a real SQLite meta store with users and a private and a public project.
type storeEnv struct {
	store        meta.Store
	authn        *Authenticator
	priv, public *meta.Project
	users        map[string]int64
}

func newStoreEnv(t testing.TB, opts ...Option) *storeEnv {
	t.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	e := &storeEnv{store: s, authn: New(s, opts...), users: map[string]int64{}}
	h, err := HashPassword("Secret123")
	require.NoError(t, err)
	for _, u := range []struct {
		name  string
		admin bool
	}{{"root", true}, {"dev", false}, {"guest", false}, {"nobody", false}} {
		e.users[u.name], err = s.CreateUser(ctx, &meta.User{Username: u.name, PasswordHash: h, Sysadmin: u.admin})
		require.NoError(t, err)
	}
	e.priv = &meta.Project{Name: "priv", Metadata: map[string]string{meta.MetaPublic: "false"}}
	e.public = &meta.Project{Name: "pub", Metadata: map[string]string{meta.MetaPublic: "true"}}
	for _, p := range []*meta.Project{e.priv, e.public} {
		_, err = s.CreateProject(ctx, p)
		require.NoError(t, err)
		for name, role := range map[string]meta.Role{"dev": meta.RoleDeveloper, "guest": meta.RoleGuest} {
			_, err = s.AddMember(ctx, &meta.Member{ProjectID: p.ID, UserID: e.users[name], Role: role})
			require.NoError(t, err)
		}
	}
	return e
}

func (e *storeEnv) login(t testing.TB, user, pass string) (Principal, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.SetBasicAuth(user, pass)
	return e.authn.Authenticate(r)
}

func TestAuthenticateUsersFromStore(t *testing.T) {
	e := newStoreEnv(t)
	p, err := e.login(t, "dev", "Secret123")
	require.NoError(t, err)
	require.Equal(t, Principal{Name: "dev", UserID: e.users["dev"]}, p)
	p, err = e.login(t, "root", "Secret123")
	require.NoError(t, err)
	require.True(t, p.Admin)
	for _, c := range [][2]string{{"dev", "wrong"}, {"ghost", "Secret123"}, {"DEV", "Secret123"}} {
		_, err = e.login(t, c[0], c[1])
		require.True(t, errcode.IsCode(err, errcode.ErrUnauthorized), "%v: %v", c, err)
	}
}

func TestAuthorizeRules(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	dev := Principal{Name: "dev", UserID: e.users["dev"]}
	guest := Principal{Name: "guest", UserID: e.users["guest"]}
	nobody := Principal{Name: "nobody", UserID: e.users["nobody"]}
	root := Principal{Name: "root", UserID: e.users["root"], Admin: true}
	anon := Principal{}
	allow := func(p Principal, proj *meta.Project, act Action) bool {
		return e.authn.Authorize(ctx, p, proj, act) == nil
	}

	require.True(t, allow(dev, e.priv, Push))
	require.True(t, allow(dev, e.priv, ReferrerPush))
	require.False(t, allow(dev, e.priv, Delete))
	require.True(t, allow(guest, e.priv, Pull))
	require.False(t, allow(guest, e.priv, Push))
	require.False(t, allow(nobody, e.priv, Pull))
	require.True(t, allow(nobody, e.public, Pull))
	require.True(t, allow(anon, e.public, Pull))
	require.True(t, allow(root, e.priv, ProjectDelete))
	require.False(t, allow(dev, nil, Pull), "registry-wide resources are for administrators")
	require.True(t, allow(root, nil, Pull))
	require.True(t, errcode.IsCode(e.authn.Authorize(ctx, anon, e.priv, Pull), errcode.ErrUnauthorized))
	require.True(t, errcode.IsCode(e.authn.Authorize(ctx, nobody, e.priv, Pull), errcode.ErrDenied))

	// The seam for robots and tokens: a Limit caps a user, and alone decides for a robot.
	pullOnly := grantFunc(func(p *meta.Project, act Action) bool { return p != nil && p.ID == e.priv.ID && act == Pull })
	limited := dev
	limited.Limit = pullOnly
	require.True(t, allow(limited, e.priv, Pull))
	require.False(t, allow(limited, e.priv, Push), "the limit caps the developer's role")
	rootLimited := root
	rootLimited.Limit = pullOnly
	require.False(t, allow(rootLimited, e.priv, Push), "the limit caps a sysadmin too")
	require.True(t, allow(rootLimited, e.public, Pull), "anyone may pull from a public project, limited or not")
	robot := Principal{Name: "robot$ci", Robot: true, Limit: pullOnly}
	require.True(t, allow(robot, e.priv, Pull), "a robot needs no membership")
	require.False(t, allow(robot, e.priv, Push))
	require.False(t, allow(Principal{Name: "robot$none", Robot: true}, e.public, Push), "a robot without a limit may do nothing")
	require.True(t, errcode.IsCode(e.authn.Authorize(ctx, robot, e.priv, Push), errcode.ErrDenied))
}

type grantFunc func(*meta.Project, Action) bool

func (f grantFunc) Allows(p *meta.Project, _ string, act Action) bool { return f(p, act) }

func TestRoleCacheIsDroppedOnForget(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	guest := Principal{Name: "guest", UserID: e.users["guest"]}
	require.Error(t, e.authn.Authorize(ctx, guest, e.priv, Push))
	members, _, err := e.store.ListMembers(ctx, e.priv.ID, "guest", 0, 0)
	require.NoError(t, err)
	require.NoError(t, e.store.UpdateMemberRole(ctx, e.priv.ID, members[0].ID, meta.RoleMaintainer))
	require.Error(t, e.authn.Authorize(ctx, guest, e.priv, Push), "the cached role holds until forgotten or expired")
	e.authn.ForgetRoles()
	require.NoError(t, e.authn.Authorize(ctx, guest, e.priv, Push))
}

func TestLoginCacheIsDroppedOnPasswordChange(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	_, err := e.login(t, "dev", "Secret123")
	require.NoError(t, err)
	u, err := e.store.GetUserByName(ctx, "dev")
	require.NoError(t, err)
	u.PasswordHash, err = HashPassword("Other456")
	require.NoError(t, err)
	require.NoError(t, e.store.UpdateUser(ctx, u))
	_, err = e.login(t, "dev", "Secret123")
	require.NoError(t, err, "served from the login cache until forgotten or expired")
	e.authn.ForgetUser("dev")
	_, err = e.login(t, "dev", "Secret123")
	require.Error(t, err)
	_, err = e.login(t, "dev", "Other456")
	require.NoError(t, err)
}

func TestLoginCacheOff(t *testing.T) {
	e := newStoreEnv(t, WithCacheTTL(0))
	ctx := context.Background()
	_, err := e.login(t, "dev", "Secret123")
	require.NoError(t, err)
	require.NoError(t, e.store.DeleteUser(ctx, e.users["dev"]))
	_, err = e.login(t, "dev", "Secret123")
	require.Error(t, err, "without the cache a deleted user is refused at once")
}

// TestThrottlePerUserName: failures of a real user lock that name (from a new address) but not
// another real user; failures of unknown names share one key.
func TestThrottlePerUserName(t *testing.T) {
	th := NewThrottle(ThrottleOptions{Free: 2})
	e := newStoreEnv(t, WithThrottle(th, nil))
	ctx := context.Background()
	for i := range 2 { // the second failure locks the name (Free: 2)
		_, err := e.authn.Login(ctx, "10.0.0."+string(rune('1'+i))+":1", "dev", "wrong")
		require.True(t, errcode.IsCode(err, errcode.ErrUnauthorized), "%v", err)
	}
	_, err := e.authn.Login(ctx, "10.0.1.1:1", "dev", "Secret123")
	require.True(t, errcode.IsCode(err, errcode.ErrTooManyRequests), "dev is locked: %v", err)
	_, err = e.authn.Login(ctx, "10.0.1.2:1", "guest", "Secret123")
	require.NoError(t, err, "another user is not")
	for i := range 2 {
		_, _ = e.authn.Login(ctx, "10.0.2."+string(rune('1'+i))+":1", "ghost"+string(rune('a'+i)), "x")
	}
	_, err = e.authn.Login(ctx, "10.0.3.1:1", "ghostz", "x")
	require.True(t, errcode.IsCode(err, errcode.ErrTooManyRequests), "unknown names share a key: %v", err)
	_, err = e.authn.Login(ctx, "10.0.3.2:1", "root", "Secret123")
	require.NoError(t, err)
}

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("Secret123")
	require.NoError(t, err)
	require.Contains(t, h, "$argon2id$v=19$m=19456,t=2,p=1$")
	require.True(t, CheckPassword(h, "Secret123"))
	require.False(t, CheckPassword(h, "Secret124"))
	h2, err := HashPassword("Secret123")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=1,p=1$AA$AA"} {
		require.False(t, CheckPassword(bad, "Secret123"), bad)
	}
	require.NoError(t, ValidatePassword("Passw0rd"))
	for _, bad := range []string{"Sh0rt", "alllowercase1", "ALLUPPER1", "NoDigitsHere"} {
		require.Error(t, ValidatePassword(bad), bad)
	}
}

func TestPermissionTable(t *testing.T) {
	// Every role may pull; only projectAdmin manages members and deletes the project.
	for r := meta.RoleProjectAdmin; r <= meta.RoleLimitedGuest; r++ {
		require.True(t, RoleAllows(r, Pull), r.Name())
		require.Equal(t, r == meta.RoleProjectAdmin, RoleAllows(r, MemberWrite), r.Name())
	}
	require.False(t, RoleAllows(0, Pull))
	require.False(t, RoleAllows(meta.RoleDeveloper, numActions))
	require.Equal(t, "referrer-push", ReferrerPush.String())
	require.Len(t, Actions(), int(numActions))
}

// BenchmarkBasicLogin measures a warm Basic login (the login cache hit every registry request with
// Basic credentials takes) against a cold one (a password check).
func BenchmarkBasicLogin(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  Option
	}{{"cached", WithCacheTTL(DefaultCacheTTL)}, {"uncached", WithCacheTTL(0)}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newStoreEnv(b, bc.ttl)
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			r.SetBasicAuth("dev", "Secret123")
			if _, err := e.authn.Authenticate(r); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.authn.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// robots is a BasicVerifier for names starting with "robot$": secret "s3cret" works, anything else fails.
type robots struct{}

func (robots) VerifyBasic(_ context.Context, user, pass string) (Principal, bool, error) {
	if !strings.HasPrefix(user, "robot$") {
		return Principal{}, false, nil
	}
	if pass != "s3cret" {
		return Principal{}, true, errcode.ErrUnauthorized.WithMessage("invalid robot secret")
	}
	return Principal{Name: user, Robot: true, Limit: grantFunc(func(*meta.Project, Action) bool { return true })}, true, nil
}

type sink struct{ entries []meta.AuditEntry }

func (s *sink) Record(e meta.AuditEntry) { s.entries = append(s.entries, e) }

func TestBasicVerifierSeam(t *testing.T) {
	audit := &sink{}
	e := newStoreEnv(t, WithBasic(robots{}), WithAudit(audit), WithThrottle(NewThrottle(ThrottleOptions{Free: 1}), nil))
	p, err := e.login(t, "robot$ci", "s3cret")
	require.NoError(t, err)
	require.True(t, p.Robot)
	_, err = e.login(t, "dev", "Secret123")
	require.NoError(t, err, "users still log in")
	_, err = e.login(t, "robot$ci", "wrong")
	require.True(t, errcode.IsCode(err, errcode.ErrUnauthorized), "%v", err)
	require.Len(t, audit.entries, 1)
	require.Equal(t, "login_failed", audit.entries[0].Operation)
	require.Equal(t, "robot$ci", audit.entries[0].Username)
	_, err = e.authn.Login(context.Background(), "10.9.9.9:1", "robot$ci", "s3cret")
	require.True(t, errcode.IsCode(err, errcode.ErrTooManyRequests), "a robot name is throttled like a user's: %v", err)
}
