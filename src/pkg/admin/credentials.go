package admin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/secret"
)

// PingTimeout bounds one upstream check.
const PingTimeout = 30 * time.Second

// MaskedSecret is what Harbor shows in place of a stored secret; a request that sends it back keeps the
// stored one.
const MaskedSecret = "*****"

// Pinger checks that an upstream registry answers its API base endpoint with the given settings and
// plaintext credentials (r.AccessSecret). Its error text is logged, so it must not contain the secret.
type Pinger interface {
	PingRegistry(ctx context.Context, r meta.Registry) error
}

// Credentials seals registry secrets before they are stored, opens them for use, decides where a stored
// one may be sent, and checks an upstream with them. Build it with NewCredentials.
type Credentials struct {
	box    *secret.Box
	pinger Pinger
	log    *slog.Logger
}

// NewCredentials returns Credentials sealing with box and checking with pinger; log receives the causes
// of failed checks (nil: discarded).
func NewCredentials(box *secret.Box, pinger Pinger, log *slog.Logger) (*Credentials, error) {
	if box == nil || pinger == nil {
		return nil, errors.New("admin: Credentials need a secret box and a pinger")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Credentials{box: box, pinger: pinger, log: log}, nil
}

// Open returns the plaintext of a stored registry's secret ("" when it has none). A secret that cannot
// be opened is INTERNAL_SERVER_ERROR asking the admin to set it again.
func (c *Credentials) Open(r *meta.Registry) (string, error) {
	if r.AccessSecret == "" {
		return "", nil
	}
	s, err := c.box.Open(r.AccessSecret)
	if err != nil {
		return "", errcode.ErrInternal.Wrap(err,
			"the stored credential of registry %d cannot be decrypted (was the secret key replaced?): set access_secret again", r.ID)
	}
	return s, nil
}

// Seal returns what to store for a plaintext secret ("" stays "").
func (c *Credentials) Seal(plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	s, err := c.box.Seal(plain)
	if err != nil {
		return "", errcode.ErrInternal.Wrap(err, "sealing the credential")
	}
	return s, nil
}

// SecretBound reports whether a stored secret saved with the settings of stored may be sent with the
// settings of next: the same type and URL (where it goes) and the same TLS trust, insecure and CA
// certificate (who can read it on the way). Anything else needs the credential again, so that nobody
// with the admin's access, or a page riding on it, can redirect a stored upstream secret to a host of
// their choosing.
func SecretBound(stored, next *meta.Registry) bool {
	return stored.Type == next.Type && stored.URL == next.URL && stored.Insecure == next.Insecure &&
		stored.CACertificate == next.CACertificate
}

// SecretFor returns the plaintext secret to use with next, a stored registry's settings after a change:
// newSecret when the request brought one, else the stored one when SecretBound allows it. A stored
// secret that would go to another destination is BAD_REQUEST "credential required when the URL changes".
func (c *Credentials) SecretFor(stored, next *meta.Registry, newSecret *string) (string, error) {
	switch {
	case newSecret != nil:
		return *newSecret, nil
	case stored.AccessSecret == "":
		return "", nil
	case !SecretBound(stored, next):
		return "", errcode.ErrBadRequest.WithMessage("credential required when the URL changes: " +
			"the stored access_secret is only sent to the URL, type and TLS settings it was saved with; send access_secret again")
	}
	return c.Open(stored)
}

// Check pings the upstream described by r with the plaintext secret, within PingTimeout. A failure is
// BAD_REQUEST "the registry is unhealthy: <kind of failure>" (pingFailure: the kind and the upstream's
// status, never the cause's text); the cause, the secret masked should it appear, is logged.
func (c *Credentials) Check(ctx context.Context, r meta.Registry, plain string) error {
	r.AccessSecret = plain
	ctx, cancel := context.WithTimeout(ctx, PingTimeout)
	defer cancel()
	if err := c.pinger.PingRegistry(ctx, r); err != nil {
		cause := err.Error()
		if plain != "" {
			cause = strings.ReplaceAll(cause, plain, MaskedSecret)
		}
		c.log.WarnContext(ctx, "registry check failed", "registry", r.Name, "id", r.ID, "url", r.URL, "err", cause)
		return errcode.ErrBadRequest.WithMessage("the registry is unhealthy: %s", pingFailure(err))
	}
	return nil
}

// Prepare validates a registry about to be created and checks that it answers with plain, then returns
// the sealed secret to store in r.AccessSecret.
func (c *Credentials) Prepare(ctx context.Context, r *meta.Registry, plain string) error {
	err := ValidateRegistry(r, true)
	if err == nil {
		err = c.Check(ctx, *r, plain)
	}
	if err == nil {
		r.AccessSecret, err = c.Seal(plain)
	}
	return err
}

// PrepareUpdate validates next, a stored registry old with a request's changes applied, and, when a
// connection setting or the secret changed, resolves the secret to use (SecretFor), checks that the
// upstream answers with it and, when newSecret is set, seals it into next.AccessSecret. changed
// reports whether the upstream was checked.
func (c *Credentials) PrepareUpdate(ctx context.Context, old, next *meta.Registry, newSecret *string) (changed bool, err error) {
	if err := ValidateRegistry(next, true); err != nil {
		return false, err
	}
	changed = newSecret != nil || next.Type != old.Type || next.URL != old.URL || next.Insecure != old.Insecure ||
		next.CACertificate != old.CACertificate || next.CredentialType != old.CredentialType || next.AccessKey != old.AccessKey
	if !changed {
		return false, nil
	}
	plain, err := c.SecretFor(old, next, newSecret)
	if err == nil {
		err = c.Check(ctx, *next, plain)
	}
	if err == nil && newSecret != nil {
		next.AccessSecret, err = c.Seal(plain)
	}
	return true, err
}

// Ping checks next, a stored registry (stored; zero when none) with a request's changes applied, or
// settings alone: type and URL are required, the name is not checked, and a stored secret is only used
// where SecretBound allows it. The error is the validation's or the check's.
func (c *Credentials) Ping(ctx context.Context, stored, next *meta.Registry, newSecret *string) error {
	if next.Type == "" || next.URL == "" {
		return errcode.ErrBadRequest.WithMessage("type or url cannot be empty")
	}
	if err := ValidateRegistry(next, false); err != nil {
		return err
	}
	plain, err := c.SecretFor(stored, next, newSecret)
	if err != nil {
		return err
	}
	return c.Check(ctx, *next, plain)
}
