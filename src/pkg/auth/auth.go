// Package auth decides who a request is and what it may do. Berth has one account today, the admin,
// authenticated with HTTP Basic; anonymous callers may read public projects.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// AdminUser is the admin account's name.
const AdminUser = "admin"

// Action is what a request wants to do to a project.
type Action int

// Actions, from least to most privileged.
const (
	Pull Action = iota
	Push
	Delete
)

// Principal is an authenticated caller; the zero value is anonymous.
type Principal struct {
	Name  string
	Admin bool
}

// Authenticator checks request credentials.
type Authenticator struct {
	adminHash [32]byte
	throttle  *Throttle // nil: failed logins are not slowed
	log       *slog.Logger
}

// Option tunes NewAuthenticator.
type Option func(*Authenticator)

// WithThrottle slows failed logins with t and logs each failed login to log.
func WithThrottle(t *Throttle, log *slog.Logger) Option {
	return func(a *Authenticator) {
		a.throttle = t
		if log != nil {
			a.log = log
		}
	}
}

// NewAuthenticator returns an Authenticator for the admin password.
func NewAuthenticator(adminPassword string, opts ...Option) *Authenticator {
	a := &Authenticator{adminHash: sha256.Sum256([]byte(adminPassword)), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Authenticate returns the caller. Requests without credentials are anonymous, and so are those with an
// empty user name and password: containers/image (skopeo, Podman, CRI-O) answers a Basic challenge that
// way when it has no credentials for a host. Wrong credentials are an UNAUTHORIZED error. With a
// Throttle, a login from a client address or for a user name locked after repeated failures is
// TOOMANYREQUESTS (429), and its password is not checked; every failed login is logged with the client
// address.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	user, pass, ok := r.BasicAuth()
	if !ok || (user == "" && pass == "") {
		return Principal{}, nil
	}
	account := throttleAccount(user)
	if a.throttle != nil {
		if wait := a.throttle.Wait(r.RemoteAddr, account); wait > 0 {
			return Principal{}, errcode.ErrTooManyRequests.WithMessage("too many failed logins: retry in %s", retryAfter(wait))
		}
	}
	h := sha256.Sum256([]byte(pass))
	if user == AdminUser && subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1 {
		if a.throttle != nil {
			a.throttle.Succeeded(r.RemoteAddr, account)
		}
		return Principal{Name: user, Admin: true}, nil
	}
	if a.throttle != nil {
		addrN, userN, lock := a.throttle.Failed(r.RemoteAddr, account)
		a.log.WarnContext(r.Context(), "login failed", "client", r.RemoteAddr, "user", userKey(user),
			"client_failures", addrN, "user_failures", userN, "locked_for", lock)
	}
	return Principal{}, errcode.ErrUnauthorized.WithMessage("invalid username or password")
}

// throttleAccount is the user key failed logins are counted under: the admin's own, and one shared by
// every other name. No other account exists, so guesses at other names gain nothing, and sharing their
// key keeps an attacker from flooding the user map with names until the admin's record is evicted.
func throttleAccount(user string) string {
	if user == AdminUser {
		return AdminUser
	}
	return ""
}

// Authorize decides whether p may perform act on project. An anonymous caller gets UNAUTHORIZED (so
// clients send credentials after the challenge); an authenticated caller without the right gets DENIED.
func Authorize(p Principal, project *meta.Project, act Action) error {
	if p.Admin {
		return nil
	}
	if act == Pull && project != nil && project.Public() {
		return nil
	}
	if p.Name == "" {
		return errcode.ErrUnauthorized.New()
	}
	return errcode.ErrDenied.New()
}
