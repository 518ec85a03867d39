package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

const password = "right-password"

// clock is a hand-driven clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

type throttled struct {
	t     *testing.T
	clock *clock
	authn *Authenticator
	th    *Throttle
	logs  *bytes.Buffer
}

func newThrottled(t *testing.T, opts ThrottleOptions) *throttled {
	c := &clock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	opts.Now = c.Now
	th := NewThrottle(opts)
	logs := &bytes.Buffer{}
	a := NewAuthenticator(password, WithThrottle(th, slog.New(slog.NewTextHandler(logs, nil))))
	return &throttled{t: t, clock: c, authn: a, th: th, logs: logs}
}

// login authenticates user:pass from addr and returns the outcome: "ok", "401" or "429".
func (x *throttled) login(addr, user, pass string) string {
	x.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	r.RemoteAddr = addr
	r.SetBasicAuth(user, pass)
	p, err := x.authn.Authenticate(r)
	switch {
	case err == nil:
		require.True(x.t, p.Admin)
		return "ok"
	case errcode.IsCode(err, errcode.ErrTooManyRequests):
		require.Equal(x.t, http.StatusTooManyRequests, errcode.As(err).Code.Status)
		return "429"
	case errcode.IsCode(err, errcode.ErrUnauthorized):
		return "401"
	}
	x.t.Fatalf("unexpected error %v", err)
	return ""
}

func TestThrottleLocksAClientAddress(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{Free: 3, Base: time.Second, Max: 8 * time.Second})
	const a = "192.0.2.1:4000"
	for range 3 {
		require.Equal(t, "401", x.login(a, "admin", "guess"))
	}
	// The 3rd failure locked the address for Base: even the right password is refused, unchecked.
	require.Equal(t, "429", x.login(a, "admin", password))
	require.Equal(t, "429", x.login("192.0.2.1:5000", "someone", "guess"), "the port does not matter")
	x.clock.Advance(time.Second)
	// Each further failure doubles the lock, up to Max.
	for _, lock := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		require.Equal(t, "401", x.login(a, "other", "guess"))
		x.clock.Advance(lock - time.Millisecond)
		require.Equal(t, "429", x.login(a, "other", "guess"), "still locked just before %s", lock)
		x.clock.Advance(time.Millisecond)
	}
	require.Equal(t, "ok", x.login(a, "admin", password), "the lock ends")
	// Success cleared the record: the next failure is free again.
	require.Equal(t, "401", x.login(a, "admin", "guess"))
	require.Equal(t, "ok", x.login(a, "admin", password))
	require.Contains(t, x.logs.String(), `msg="login failed" client=192.0.2.1:4000 user=admin`)
}

func TestThrottleLocksAUserAcrossAddresses(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{Free: 3, Base: time.Minute})
	const home = "198.51.100.7:1"
	require.Equal(t, "ok", x.login(home, "admin", password), "the admin's machine logged in before the attack")
	for i := range 3 {
		require.Equal(t, "401", x.login(fmt.Sprintf("203.0.113.%d:1", i), "admin", "guess"))
	}
	require.Equal(t, "429", x.login("203.0.113.99:1", "admin", password), "a new address is held by the user's lock")
	require.Equal(t, "ok", x.login(home, "admin", password), "a trusted address is not locked out by others' guesses")
	x.clock.Advance(25 * time.Hour) // the trust has expired; so has the lock
	require.Equal(t, "ok", x.login("203.0.113.99:1", "admin", password))
}

func TestThrottleForgetsOldFailures(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{Free: 2, Window: time.Minute})
	const a = "192.0.2.1:1"
	require.Equal(t, "401", x.login(a, "admin", "guess"))
	x.clock.Advance(time.Minute)
	require.Equal(t, "401", x.login(a, "admin", "guess"), "the first failure was forgotten")
	require.Equal(t, "ok", x.login(a, "admin", password), "one failure in the window: not locked")
}

func TestThrottleSuccessIsNeverDelayed(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{Free: 1})
	for range 1000 {
		require.Equal(t, "ok", x.login("192.0.2.1:1", "admin", password))
	}
	require.Empty(t, x.logs.String())
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{MaxEntries: 50, Free: 3000})
	long := strings.Repeat("u", 10000)
	for i := range 2000 {
		addr := fmt.Sprintf("10.%d.%d.%d:1", i>>16, (i>>8)&255, i&255)
		require.Equal(t, "401", x.login(addr, fmt.Sprintf("%d%s", i, long), "guess"))
		x.th.Failed(addr, fmt.Sprintf("%d%s", i, long)) // the Throttle itself, with distinct user names
		require.Equal(t, "401", x.login(addr, "admin", "guess"))
	}
	x.th.mu.Lock()
	defer x.th.mu.Unlock()
	require.Equal(t, 50, x.th.addrs.len())
	require.Equal(t, 50, x.th.users.len())
	for k := range x.th.users.items {
		require.LessOrEqual(t, len(k), maxUserKey)
	}
	f, ok := x.th.users.items["admin"]
	require.True(t, ok, "the admin's record was not evicted by the flood of other names")
	require.Equal(t, 2000, f.Value.(*lruEntry[failures]).value.n)
}

func TestThrottleUnknownNamesShareOneKey(t *testing.T) {
	x := newThrottled(t, ThrottleOptions{Free: 3, Base: time.Minute})
	for i := range 3 {
		require.Equal(t, "401", x.login(fmt.Sprintf("203.0.113.%d:1", i), fmt.Sprintf("nobody%d", i), "guess"))
	}
	require.Equal(t, "429", x.login("203.0.113.50:1", "someone-else", "guess"), "other names are locked together")
	require.Equal(t, "ok", x.login("203.0.113.50:1", "admin", password), "the admin is not")
}

func TestClientKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.1:80":                      "192.0.2.1",
		"[::ffff:192.0.2.1]:80":             "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80":         "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff:ffff:1]:9": "2001:db8:1:2::/64",
		"not-an-address":                    "not-an-address",
	}
	for in, want := range cases {
		require.Equal(t, want, clientKey(in), in)
	}
}

func TestNoThrottleByDefault(t *testing.T) {
	a := NewAuthenticator(password)
	for range 100 {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		r.SetBasicAuth("admin", "guess")
		_, err := a.Authenticate(r)
		require.True(t, errcode.IsCode(err, errcode.ErrUnauthorized))
	}
}
