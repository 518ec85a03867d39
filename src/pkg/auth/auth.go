// Package auth decides who a request is and what it may do. Berth has one account today, the admin,
// authenticated with HTTP Basic; anonymous callers may read public projects.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"

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
	// Access, when set, is everything the caller may do besides reading public projects: a robot
	// account's permissions, a bearer token's granted scopes.
	Access Access
	// Token marks a caller authenticated by a bearer token. It is refused with UNAUTHORIZED, not DENIED,
	// what its token does not grant, so that clients ask the token service for the scope again.
	Token bool
}

// Access limits a Principal (see Principal.Access).
type Access interface {
	// Allows reports whether act is granted on repository (a full name "<project>/<path>") of project;
	// repository "" asks about the project as a whole.
	Allows(project *meta.Project, repository string, act Action) bool
}

// ErrBadCredentials is what a RobotVerifier or BearerVerifier returns (wrapped) for credentials that
// do not authenticate anyone; other errors are server failures.
var ErrBadCredentials = errors.New("bad credentials")

// ErrUnknownAccount is what a RobotVerifier adds (wrapped, beside ErrBadCredentials) for a name no
// account has: its failed logins are counted under the key every unknown name shares, so that guesses
// at made-up robot names cannot flood the throttle's user map and evict the admin's record (see
// throttleAccount). Such guesses are still held by their client address's lock.
var ErrUnknownAccount = errors.New("unknown account")

// RobotVerifier authenticates robot accounts (user names with the robot prefix).
type RobotVerifier interface {
	VerifyRobot(r *http.Request, name, secret string) (Principal, error)
}

// BearerVerifier authenticates "Authorization: Bearer" tokens.
type BearerVerifier interface {
	VerifyBearer(r *http.Request, token string) (Principal, error)
}

// Authenticator checks request credentials.
type Authenticator struct {
	adminHash [32]byte
	throttle  *Throttle // nil: failed logins are not slowed
	log       *slog.Logger

	robotPrefix string
	robots      RobotVerifier  // nil: no robot accounts
	bearer      BearerVerifier // nil: bearer tokens are not accepted
}

// WithRobots authenticates Basic user names starting with prefix through v.
func WithRobots(prefix string, v RobotVerifier) Option {
	return func(a *Authenticator) { a.robotPrefix, a.robots = prefix, v }
}

// WithBearer accepts "Authorization: Bearer <token>" through v.
func WithBearer(v BearerVerifier) Option {
	return func(a *Authenticator) { a.bearer = v }
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
	if a.bearer != nil {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			p, err := a.bearer.VerifyBearer(r, tok)
			return p, credentialError(err)
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok || (user == "" && pass == "") {
		return Principal{}, nil
	}
	account := a.throttleAccount(user)
	if a.throttle != nil {
		if wait := a.throttle.Wait(r.RemoteAddr, account); wait > 0 {
			return Principal{}, errcode.ErrTooManyRequests.WithMessage("too many failed logins: retry in %s", retryAfter(wait))
		}
	}
	p, err := a.check(r, user, pass)
	if err == nil {
		if a.throttle != nil {
			a.throttle.Succeeded(r.RemoteAddr, account)
		}
		return p, nil
	}
	if !errors.Is(err, ErrBadCredentials) {
		return Principal{}, credentialError(err)
	}
	if errors.Is(err, ErrUnknownAccount) {
		account = ""
	}
	if a.throttle != nil {
		addrN, userN, lock := a.throttle.Failed(r.RemoteAddr, account)
		a.log.WarnContext(r.Context(), "login failed", "client", r.RemoteAddr, "user", userKey(user),
			"client_failures", addrN, "user_failures", userN, "locked_for", lock)
	}
	return Principal{}, errcode.ErrUnauthorized.WithMessage("invalid username or password")
}

// check verifies Basic credentials: the admin's, or a robot account's through the RobotVerifier.
func (a *Authenticator) check(r *http.Request, user, pass string) (Principal, error) {
	if a.robots != nil && a.robotPrefix != "" && strings.HasPrefix(user, a.robotPrefix) {
		return a.robots.VerifyRobot(r, user, pass)
	}
	h := sha256.Sum256([]byte(pass))
	if user == AdminUser && subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1 {
		return Principal{Name: user, Admin: true}, nil
	}
	return Principal{}, ErrBadCredentials
}

// credentialError maps a verifier's error: bad credentials are UNAUTHORIZED with the verifier's
// reason, anything else a server failure.
func credentialError(err error) error {
	var e *errcode.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, ErrBadCredentials):
		return errcode.ErrUnauthorized.WithMessage("%s", err.Error())
	}
	return errcode.ErrUnknown.Wrap(err, "checking credentials")
}

// throttleAccount is the user key failed logins are counted under: the admin's own, each robot
// account's own (so that guesses at one robot do not lock the others out), and one shared by every
// other name. No other account exists, so guesses at other names gain nothing, and sharing their key
// keeps an attacker from flooding the user map with names until the admin's record is evicted.
func (a *Authenticator) throttleAccount(user string) string {
	if user == AdminUser || (a.robots != nil && a.robotPrefix != "" && strings.HasPrefix(user, a.robotPrefix)) {
		return user
	}
	return ""
}

// Authorize decides whether p may perform act on project. An anonymous caller gets UNAUTHORIZED (so
// clients send credentials after the challenge); an authenticated caller without the right gets DENIED.
func Authorize(p Principal, project *meta.Project, act Action) error {
	return AuthorizeRepository(p, project, "", act)
}

// AuthorizeRepository is Authorize for one repository of project (its full name; "" for the project as
// a whole). A principal with Access may do what Access allows and read public projects; a bearer
// token's refusals are UNAUTHORIZED (see Principal.Token).
func AuthorizeRepository(p Principal, project *meta.Project, repository string, act Action) error {
	if p.Access != nil {
		switch {
		case project != nil && p.Access.Allows(project, repository, act):
			return nil
		case act == Pull && project != nil && project.Public():
			return nil
		case p.Name == "" || p.Token:
			return errcode.ErrUnauthorized.WithMessage("the token does not grant this access")
		}
		return errcode.ErrDenied.New()
	}
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
