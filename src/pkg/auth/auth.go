// Package auth decides who a request is and what it may do.
//
// Who: local users stored in the metadata database (meta.UserStore), authenticated with HTTP Basic;
// the admin is an ordinary system administrator among them. Callers without credentials are anonymous.
// What: Authenticator.Authorize, the one path every endpoint (registry, Harbor API, console) asks,
// applies the permission table of permissions.go: system administrators may do everything, project
// members what their role allows, anyone may pull from a public project. A Principal may carry a Limit
// (a robot account's permissions, a bearer token's granted scopes) that narrows it further.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// AdminUser is the name of the system administrator created on first start.
const AdminUser = "admin"

// Principal is an authenticated caller; the zero value is anonymous.
type Principal struct {
	// Name is the user (or robot) name; "" for anonymous callers.
	Name string
	// UserID is the local user's ID; 0 for anonymous callers and robots.
	UserID int64
	// Admin marks a system administrator (the user's sysadmin_flag).
	Admin bool
	// Robot marks a robot account: Limit alone decides what it may do.
	Robot bool
	// Token marks a caller authenticated by a bearer token: Limit (its granted scopes, already
	// intersected with the account's rights when it was issued) alone decides, and what it does not
	// grant is UNAUTHORIZED, not DENIED, so that clients ask the token service for the scope again.
	Token bool
	// Limit, when not nil, caps what the principal may do: a robot's permissions, or the scopes a
	// bearer token was granted. A user's own roles still apply beneath it.
	Limit Grant
}

// Anonymous reports whether p carries no identity.
func (p Principal) Anonymous() bool { return p.Name == "" }

// Grant is a set of permissions, granted to a robot account (per project) or a bearer token (per
// repository). Package token and package robot implement it.
type Grant interface {
	// Allows reports whether act is granted on repository (a full name "<project>/<path>") of project;
	// repository "" asks about the project as a whole. Authorize never asks about a nil project.
	Allows(project *meta.Project, repository string, act Action) bool
}

// ErrBadCredentials is what a BasicVerifier or BearerVerifier returns (wrapped) for credentials that
// do not authenticate anyone; other errors are server failures.
var ErrBadCredentials = errors.New("bad credentials")

// ErrUnknownAccount is what a BasicVerifier adds (wrapped, beside ErrBadCredentials) for a name no
// account has: its failed logins are counted under the key every unknown name shares, so that guesses
// at made-up names cannot flood the throttle's user map and evict a real account's record.
var ErrUnknownAccount = errors.New("unknown account")

// credentialError maps a verifier's error: errcode errors pass, bad credentials are UNAUTHORIZED with
// the verifier's reason, anything else is a server failure.
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

// Accounts is what the Authenticator reads: users and their project roles. meta.Store satisfies it.
type Accounts interface {
	GetUserByName(ctx context.Context, name string) (*meta.User, error)
	MemberRole(ctx context.Context, projectID, userID int64) (meta.Role, error)
}

// BearerVerifier checks bearer tokens (package token plugs in here with WithBearer).
type BearerVerifier interface {
	// VerifyBearer returns the principal a token stands for, its granted scopes as the Limit, or an
	// error (an errcode UNAUTHORIZED) for a token that is malformed, expired, signed by an unknown key
	// or issued for another service.
	VerifyBearer(ctx context.Context, token string) (Principal, error)
}

// BasicVerifier checks Basic credentials of accounts that are not local users, such as robot accounts
// (package robot plugs in here with WithBasic).
type BasicVerifier interface {
	// VerifyBasic reports ok false when user is none of its accounts (a local user is then tried).
	// Otherwise it returns the principal, or an error for a wrong secret or a disabled or expired
	// account; such failures are throttled, logged and audited like a user's.
	VerifyBasic(ctx context.Context, user, pass string) (p Principal, ok bool, err error)
}

// AuditSink records audit entries without blocking (package audit's Writer).
type AuditSink interface {
	Record(e meta.AuditEntry)
}

// Authenticator checks request credentials and authorizes requests. Safe for concurrent use.
type Authenticator struct {
	accounts Accounts
	throttle *Throttle // nil: failed logins are not slowed
	audit    AuditSink // nil: failed logins are only logged
	bearer   BearerVerifier
	basic    BasicVerifier
	log      *slog.Logger
	logins   *loginCache
	roles    *roleCache
	dummy    string // checked for unknown user names, to take as long as a known one
}

// Option tunes New.
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

// WithBearer accepts "Authorization: Bearer <token>" checked by v.
func WithBearer(v BearerVerifier) Option { return func(a *Authenticator) { a.bearer = v } }

// WithBasic lets v check Basic credentials before local users are looked up.
func WithBasic(v BasicVerifier) Option { return func(a *Authenticator) { a.basic = v } }

// WithAudit records failed logins in sink.
func WithAudit(sink AuditSink) Option { return func(a *Authenticator) { a.audit = sink } }

// WithCacheTTL sets how long a successful password check and a project role are reused (default
// DefaultCacheTTL; 0 or less: never reused). Changes made through this process are seen at once (see
// ForgetUser, ForgetRoles); changes made on other nodes within the TTL.
func WithCacheTTL(ttl time.Duration) Option {
	return func(a *Authenticator) {
		a.logins.ttl = ttl
		a.roles.ttl = ttl
	}
}

// DefaultCacheTTL is how long successful password checks and project roles are reused by default.
const DefaultCacheTTL = 5 * time.Second

// New returns an Authenticator over accounts.
func New(accounts Accounts, opts ...Option) *Authenticator {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	a := &Authenticator{accounts: accounts, log: slog.New(slog.DiscardHandler),
		logins: newLoginCache(key, DefaultCacheTTL, 10000), roles: newRoleCache(DefaultCacheTTL, 100000), dummy: dummyHash}
	if s, ok := accounts.(*singleAdmin); ok {
		a.dummy = s.dummy
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// NewAuthenticator returns an Authenticator with one account, the system administrator AdminUser with
// adminPassword, held in memory: for tests and tools without a database. Servers use New.
func NewAuthenticator(adminPassword string, opts ...Option) *Authenticator {
	return New(newSingleAdmin(adminPassword), opts...)
}

// ForgetUser drops the cached logins of user: call it after the user's password, sysadmin flag or
// existence changed.
func (a *Authenticator) ForgetUser(user string) { a.logins.forget(user) }

// ForgetRoles drops every cached project role: call it after a membership changed.
func (a *Authenticator) ForgetRoles() { a.roles.clear() }

// Authenticate returns the caller. Requests without credentials are anonymous, and so are those with an
// empty user name and password: containers/image (skopeo, Podman, CRI-O) answers a Basic challenge that
// way when it has no credentials for a host. Wrong credentials are an UNAUTHORIZED error. With a
// Throttle, a login from a client address or for a user name locked after repeated failures is
// TOOMANYREQUESTS (429), and its password is not checked; every failed login is logged with the client
// address and recorded in the audit log.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a.bearer != nil {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			p, err := a.bearer.VerifyBearer(r.Context(), strings.TrimSpace(h[7:]))
			return p, credentialError(err)
		}
	}
	user, pass, ok := r.BasicAuth()
	if !ok || (user == "" && pass == "") {
		return Principal{}, nil
	}
	return a.Login(r.Context(), r.RemoteAddr, user, pass)
}

// Login checks a user name and password from a client address, as Authenticate does.
func (a *Authenticator) Login(ctx context.Context, remoteAddr, user, pass string) (Principal, error) {
	key := a.logins.key(user, pass)
	if p, ok := a.logins.get(key); ok {
		if err := a.wait(remoteAddr, user); err != nil {
			return Principal{}, err
		}
		return p, nil
	}
	if a.basic != nil {
		if p, ok, err := a.verifyOther(ctx, remoteAddr, user, pass); ok {
			return p, err
		}
	}
	u, err := a.accounts.GetUserByName(ctx, user)
	known := err == nil
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return Principal{}, errcode.ErrUnknown.Wrap(err, "looking up user")
	}
	// Failures of unknown names share one throttle key, so that guessing names cannot flood the map
	// of user names until a real user's record is evicted.
	account := ""
	if known {
		account = user
	}
	if err := a.wait(remoteAddr, account); err != nil {
		return Principal{}, err
	}
	hash := a.dummy
	if known {
		hash = u.PasswordHash
	}
	if CheckPassword(hash, pass) && known {
		if a.throttle != nil {
			a.throttle.Succeeded(remoteAddr, account)
		}
		p := Principal{Name: u.Username, UserID: u.ID, Admin: u.Sysadmin}
		a.logins.put(key, user, p)
		return p, nil
	}
	a.failed(ctx, remoteAddr, user, account)
	return Principal{}, errcode.ErrUnauthorized.WithMessage("invalid username or password")
}

// verifyOther asks the BasicVerifier, with the throttle and the failure records of a user's login.
// Successes are not cached here: the verifier decides what it caches.
func (a *Authenticator) verifyOther(ctx context.Context, remoteAddr, user, pass string) (Principal, bool, error) {
	if err := a.wait(remoteAddr, user); err != nil {
		return Principal{}, true, err
	}
	p, ok, err := a.basic.VerifyBasic(ctx, user, pass)
	switch {
	case !ok:
		return Principal{}, false, nil
	case err != nil && !errors.Is(err, ErrBadCredentials) && !errcode.IsCode(err, errcode.ErrUnauthorized):
		return Principal{}, true, credentialError(err) // a server failure, not a failed login
	case err != nil:
		account := user
		if errors.Is(err, ErrUnknownAccount) {
			account = ""
		}
		a.failed(ctx, remoteAddr, user, account)
		return Principal{}, true, credentialError(err)
	}
	if a.throttle != nil {
		a.throttle.Succeeded(remoteAddr, user)
	}
	return p, true, nil
}

func (a *Authenticator) wait(remoteAddr, account string) error {
	if a.throttle == nil {
		return nil
	}
	if wait := a.throttle.Wait(remoteAddr, account); wait > 0 {
		return errcode.ErrTooManyRequests.WithMessage("too many failed logins: retry in %s", retryAfter(wait))
	}
	return nil
}

func (a *Authenticator) failed(ctx context.Context, remoteAddr, user, account string) {
	if a.audit != nil {
		a.audit.Record(meta.AuditEntry{Resource: userKey(user), ResourceType: "user", Operation: "login_failed",
			Username: userKey(user), OpTime: time.Now().UTC()})
	}
	if a.throttle == nil {
		return
	}
	addrN, userN, lock := a.throttle.Failed(remoteAddr, account)
	a.log.WarnContext(ctx, "login failed", "client", remoteAddr, "user", userKey(user),
		"client_failures", addrN, "user_failures", userN, "locked_for", lock)
}

// Authorize decides whether p may perform act on project as a whole; every endpoint asks it or
// AuthorizeRepository.
func (a *Authenticator) Authorize(ctx context.Context, p Principal, project *meta.Project, act Action) error {
	return a.AuthorizeRepository(ctx, p, project, "", act)
}

// AuthorizeRepository decides whether p may perform act on repository (its full name; "" for the
// project as a whole) of project. The rules, in order: anyone may Pull from a public project; a robot
// or a bearer token may do what its Limit allows and nothing else; another Limit that does not allow
// act denies; a system administrator may do everything; an anonymous caller gets UNAUTHORIZED (so
// clients send credentials after the challenge); a user gets what the role of its membership allows
// (permissions.go), else DENIED. project nil means a registry-wide resource: administrators only.
func (a *Authenticator) AuthorizeRepository(ctx context.Context, p Principal, project *meta.Project, repository string, act Action) error {
	if project != nil && project.Public() && PublicAllows(act) {
		return nil
	}
	if p.Limit != nil && (project == nil || !p.Limit.Allows(project, repository, act)) {
		return deny(p)
	}
	if p.Robot || p.Token {
		if p.Limit == nil {
			return deny(p)
		}
		return nil
	}
	if p.Admin {
		return nil
	}
	if project == nil || p.UserID == 0 {
		return deny(p)
	}
	role, err := a.Role(ctx, p, project.ID)
	if err != nil {
		return err
	}
	if RoleAllows(role, act) {
		return nil
	}
	return deny(p)
}

// Role returns p's role in a project: 0 when it has none. System administrators and robots have none.
func (a *Authenticator) Role(ctx context.Context, p Principal, projectID int64) (meta.Role, error) {
	if p.UserID == 0 {
		return 0, nil
	}
	if role, ok := a.roles.get(projectID, p.UserID); ok {
		return role, nil
	}
	role, err := a.accounts.MemberRole(ctx, projectID, p.UserID)
	if errors.Is(err, meta.ErrNotFound) {
		role, err = 0, nil
	}
	if err != nil {
		return 0, errcode.ErrUnknown.Wrap(err, "looking up project role")
	}
	a.roles.put(projectID, p.UserID, role)
	return role, nil
}

func deny(p Principal) error {
	if p.Anonymous() {
		return errcode.ErrUnauthorized.New()
	}
	if p.Token {
		return errcode.ErrUnauthorized.WithMessage("the token does not grant this access")
	}
	return errcode.ErrDenied.New()
}

// singleAdmin is an Accounts holding only the system administrator, in memory. Its hash never leaves
// the process, so it is made with light argon2id parameters (64 KiB, one pass): tests log in thousands
// of times.
type singleAdmin struct {
	admin meta.User
	dummy string
}

func newSingleAdmin(password string) *singleAdmin {
	return &singleAdmin{
		admin: meta.User{ID: 1, Username: AdminUser, PasswordHash: mustHash(hashWith(password, 1, 64)), Sysadmin: true},
		dummy: mustHash(hashWith("not a password of anyone", 1, 64)),
	}
}

func (s *singleAdmin) GetUserByName(_ context.Context, name string) (*meta.User, error) {
	if name != AdminUser {
		return nil, meta.ErrNotFound
	}
	u := s.admin
	return &u, nil
}

func (s *singleAdmin) MemberRole(context.Context, int64, int64) (meta.Role, error) {
	return 0, meta.ErrNotFound
}

// keyFor derives the cache key of a user name and password: an HMAC under a key of this process, so
// that the cache holds no password nor an offline-checkable hash of one.
func keyFor(mac []byte, user, pass string) [32]byte {
	m := hmac.New(sha256.New, mac)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}
