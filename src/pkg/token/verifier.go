package token

import (
	"context"

	"github.com/berth-registry/berth/src/pkg/auth"
)

// SubjectCheck reports whether a token's subject may still use it: a robot account disabled, expired
// or deleted since the token was issued must not. It returns an error wrapping auth.ErrBadCredentials
// for a subject that may not, and nil for one that may (or that it does not know, such as the admin).
type SubjectCheck func(ctx context.Context, subject string) error

// Verifier makes a Service an auth.BearerVerifier.
type Verifier struct {
	svc   *Service
	check SubjectCheck
}

// NewVerifier returns a verifier of svc's tokens; check (nil: none) runs on every token's subject.
func NewVerifier(svc *Service, check SubjectCheck) *Verifier {
	return &Verifier{svc: svc, check: check}
}

// VerifyBearer returns the principal a token stands for: its subject, limited to its access claim.
// A token never carries the admin's rights beyond its scopes.
func (v *Verifier) VerifyBearer(ctx context.Context, raw string) (auth.Principal, error) {
	c, err := v.svc.Verify(raw)
	if err != nil {
		return auth.Principal{}, err
	}
	if v.check != nil && c.Subject != "" {
		if err := v.check(ctx, c.Subject); err != nil {
			return auth.Principal{}, err
		}
	}
	return auth.Principal{Name: c.Subject, Limit: c, Token: true}, nil
}

var _ auth.BearerVerifier = (*Verifier)(nil)
