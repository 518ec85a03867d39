package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

type allowAll struct{}

func (allowAll) Allows(*meta.Project, string, auth.Action) bool { return true }

type robots map[string]string // name -> secret

func (r robots) VerifyBasic(_ context.Context, name, secret string) (auth.Principal, bool, error) {
	if !strings.HasPrefix(name, "robot$") {
		return auth.Principal{}, false, nil
	}
	if name == "robot$broken" {
		return auth.Principal{}, true, errors.New("database down")
	}
	s, ok := r[name]
	if !ok {
		return auth.Principal{}, true, fmt.Errorf("%w: %w: invalid username or password", auth.ErrBadCredentials, auth.ErrUnknownAccount)
	}
	if s == secret {
		return auth.Principal{Name: name, Robot: true, Limit: allowAll{}}, true, nil
	}
	return auth.Principal{}, true, fmt.Errorf("%w: nope", auth.ErrBadCredentials)
}

type bearer string

func (b bearer) VerifyBearer(_ context.Context, tok string) (auth.Principal, error) {
	if tok == string(b) {
		return auth.Principal{Name: "robot$ci", Limit: allowAll{}, Token: true}, nil
	}
	return auth.Principal{}, fmt.Errorf("%w: bad token", auth.ErrBadCredentials)
}

// TestHooks checks the robot and bearer hooks of Authenticate: robot names go to the RobotVerifier,
// Bearer headers to the BearerVerifier, failures are UNAUTHORIZED (server failures 500), and a robot's
// failed logins are throttled under its own name only.
func TestHooks(t *testing.T) {
	th := auth.NewThrottle(auth.ThrottleOptions{Free: 1, Base: time.Hour})
	a := auth.NewAuthenticator("pw", auth.WithThrottle(th, nil), auth.WithBasic(robots{"robot$ci": "s3cret", "robot$other": "x"}),
		auth.WithBearer(bearer("good")))
	addr := "10.0.0.1:1234"
	do := func(set func(r *http.Request)) (auth.Principal, error) {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		r.RemoteAddr = addr
		set(r)
		return a.Authenticate(r)
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	p, err := do(basic("robot$ci", "s3cret"))
	require.NoError(t, err)
	require.Equal(t, "robot$ci", p.Name)
	require.NotNil(t, p.Limit)

	p, err = do(func(r *http.Request) { r.Header.Set("Authorization", "Bearer good") })
	require.NoError(t, err)
	require.True(t, p.Token)
	_, err = do(func(r *http.Request) { r.Header.Set("Authorization", "Bearer bad") })
	require.ErrorContains(t, err, "bad token")

	_, err = do(basic("robot$broken", "x"))
	require.ErrorContains(t, err, "checking credentials")

	// Two failures lock robot$ci (Free: 1), seen from another address too, but not robot$other nor the
	// admin.
	for range 2 {
		_, err = do(basic("robot$ci", "wrong"))
		require.Error(t, err)
	}
	addr = "10.0.0.2:1234"
	_, err = do(basic("robot$ci", "s3cret"))
	require.ErrorContains(t, err, "too many failed logins")
	_, err = do(basic("robot$other", "x"))
	require.NoError(t, err, "addr %s", addr)
	_, err = do(basic(auth.AdminUser, "pw"))
	require.NoError(t, err)

	// A made-up robot name is refused like a wrong secret.
	addr = "10.0.0.3:1234"
	_, err = do(basic("robot$ghost", "x"))
	require.ErrorContains(t, err, "invalid username or password")
}
