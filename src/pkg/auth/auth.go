// Package auth decides who a request is and what it may do. Berth has one account today, the admin,
// authenticated with HTTP Basic; anonymous callers may read public projects.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
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
}

// NewAuthenticator returns an Authenticator for the admin password.
func NewAuthenticator(adminPassword string) *Authenticator {
	return &Authenticator{adminHash: sha256.Sum256([]byte(adminPassword))}
}

// Authenticate returns the caller. Requests without credentials are anonymous, and so are those with an
// empty user name and password: containers/image (skopeo, Podman, CRI-O) answers a Basic challenge that
// way when it has no credentials for a host. Wrong credentials are an UNAUTHORIZED error.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	user, pass, ok := r.BasicAuth()
	if !ok || (user == "" && pass == "") {
		return Principal{}, nil
	}
	h := sha256.Sum256([]byte(pass))
	if user == AdminUser && subtle.ConstantTimeCompare(h[:], a.adminHash[:]) == 1 {
		return Principal{Name: user, Admin: true}, nil
	}
	return Principal{}, errcode.ErrUnauthorized.WithMessage("invalid username or password")
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
