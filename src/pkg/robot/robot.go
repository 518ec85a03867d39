// Package robot authenticates robot accounts and decides what their permissions allow. It is free of
// HTTP routing and database code: it reads robots through a meta.RobotStore.
package robot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// DefaultPrefix is Harbor's default robot name prefix (robot_name_prefix).
const DefaultPrefix = "robot$"

// Permission kinds, resources and actions a robot may be granted (Harbor's names).
const (
	KindProject        = "project"
	ResourceRepository = "repository"
	ResourceArtifact   = "artifact"
	ActionPull         = "pull"
	ActionPush         = "push"
	ActionDelete       = "delete"
)

// Grantable lists the resource and action pairs a robot's project permissions may hold: the ones Berth
// enforces. repository:delete and artifact:delete both allow deleting manifests, tags and blobs.
var Grantable = []meta.RobotAccess{
	{Resource: ResourceRepository, Action: ActionPull},
	{Resource: ResourceRepository, Action: ActionPush},
	{Resource: ResourceRepository, Action: ActionDelete},
	{Resource: ResourceArtifact, Action: ActionDelete},
}

// secretAlphabet has upper- and lower-case letters and digits, as Harbor's secrets do.
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewSecret returns a random 32-character secret (about 190 bits) with at least one upper-case
// letter, one lower-case letter and one digit.
func NewSecret() (string, error) {
	for {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("robot secret: %w", err)
		}
		for i := range b {
			b[i] = secretAlphabet[int(b[i])%len(secretAlphabet)]
		}
		if s := string(b[:]); ValidSecret(s) == nil {
			return s, nil
		}
	}
}

// ValidSecret checks a secret chosen by the caller: 8 to 128 characters with an upper-case letter, a
// lower-case letter and a digit (Harbor's rule).
func ValidSecret(s string) error {
	if len(s) < 8 || len(s) > 128 {
		return errors.New("the secret must be 8 to 128 characters long")
	}
	if !strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") ||
		!strings.ContainsAny(s, "0123456789") {
		return errors.New("the secret needs an upper-case letter, a lower-case letter and a digit")
	}
	return nil
}

// HashSecret returns "<salt>:<sha256(salt+secret)>" in hex. A fast hash is enough for generated
// secrets (190 random bits); it keeps a robot's Basic login, sent with every request by some clients,
// cheap.
func HashSecret(secret string) (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", fmt.Errorf("robot secret: %w", err)
	}
	s := hex.EncodeToString(salt[:])
	sum := sha256.Sum256([]byte(s + secret))
	return s + ":" + hex.EncodeToString(sum[:]), nil
}

// secretMatches reports whether secret hashes to stored.
func secretMatches(stored, secret string) bool {
	salt, want, ok := strings.Cut(stored, ":")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(salt + secret))
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(want)) == 1
}

// Usable returns nil for a robot that may log in at now, or why it may not.
func Usable(r *meta.Robot, now time.Time) error {
	switch {
	case r.Disabled:
		return fmt.Errorf("%w: robot account is disabled", auth.ErrBadCredentials)
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		return fmt.Errorf("%w: robot account has expired", auth.ErrBadCredentials)
	}
	return nil
}

// Access is what a robot's permissions allow; it makes them an auth.Grant.
type Access []meta.RobotPermission

// Allows reports whether a permission of kind project whose namespace is project's name (or "*")
// grants act. Pull needs repository:pull, Push (and ReferrerPush) repository:push, Delete (and
// TagDelete) repository:delete or artifact:delete (see auth.Action.Scope). The repository does not
// matter: robot permissions are per project.
func (a Access) Allows(project *meta.Project, _ string, act auth.Action) bool {
	want := act.Scope()
	if project == nil || want == "" {
		return false
	}
	for _, p := range a {
		if p.Kind != KindProject || (p.Namespace != "*" && p.Namespace != project.Name) {
			continue
		}
		for _, x := range p.Access {
			if x.Effect == "deny" {
				continue
			}
			switch {
			case want == ActionPull && x.Resource == ResourceRepository && x.Action == ActionPull,
				want == ActionPush && x.Resource == ResourceRepository && x.Action == ActionPush,
				want == ActionDelete && (x.Resource == ResourceRepository || x.Resource == ResourceArtifact) && x.Action == ActionDelete:
				return true
			}
		}
	}
	return false
}

var _ auth.Grant = Access(nil)

// Verifier authenticates robots (auth.RobotVerifier) and checks token subjects (token.SubjectCheck).
type Verifier struct {
	store  meta.RobotStore
	prefix string
	now    func() time.Time
	ttl    time.Duration

	mu     sync.Mutex
	active map[string]activeEntry // subject -> recent Usable outcome, for Active
}

type activeEntry struct {
	err error
	at  time.Time
}

// NewVerifier returns a Verifier of the robots in store, named with prefix. Active reuses a robot's
// state for up to ttl (keep it under a second: disabling a robot must take effect that fast).
func NewVerifier(store meta.RobotStore, prefix string, ttl time.Duration) *Verifier {
	return &Verifier{store: store, prefix: prefix, now: time.Now, ttl: ttl, active: map[string]activeEntry{}}
}

// VerifyBasic makes Verifier an auth.BasicVerifier: names without the robot prefix are not its
// (ok false); for the others it returns the robot's principal, limited to its permissions, or an
// error wrapping auth.ErrBadCredentials for a wrong secret or a disabled or expired robot.
func (v *Verifier) VerifyBasic(ctx context.Context, name, secret string) (p auth.Principal, ok bool, err error) {
	if v.prefix == "" || !strings.HasPrefix(name, v.prefix) {
		return auth.Principal{}, false, nil
	}
	p, err = v.verify(ctx, name, secret)
	return p, true, err
}

func (v *Verifier) verify(ctx context.Context, name, secret string) (auth.Principal, error) {
	rb, err := v.lookup(ctx, name)
	if err != nil {
		return auth.Principal{}, err
	}
	if !secretMatches(rb.SecretHash, secret) {
		return auth.Principal{}, fmt.Errorf("%w: invalid username or password", auth.ErrBadCredentials)
	}
	if err := Usable(rb, v.now()); err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{Name: name, Robot: true, Limit: Access(rb.Permissions)}, nil
}

var _ auth.BasicVerifier = (*Verifier)(nil)

func (v *Verifier) lookup(ctx context.Context, name string) (*meta.Robot, error) {
	bare, ok := strings.CutPrefix(name, v.prefix)
	if !ok || bare == "" {
		return nil, fmt.Errorf("%w: %w: invalid username or password", auth.ErrBadCredentials, auth.ErrUnknownAccount)
	}
	rb, err := v.store.GetRobotByName(ctx, bare)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w: invalid username or password", auth.ErrBadCredentials, auth.ErrUnknownAccount)
	}
	return rb, err
}

// Active checks that a token's subject, when it names a robot, still names a usable one. Other
// subjects pass.
func (v *Verifier) Active(ctx context.Context, subject string) error {
	if !strings.HasPrefix(subject, v.prefix) {
		return nil
	}
	now := v.now()
	v.mu.Lock()
	e, ok := v.active[subject]
	v.mu.Unlock()
	if ok && now.Sub(e.at) < v.ttl {
		return e.err
	}
	rb, err := v.lookup(ctx, subject)
	if err == nil {
		err = Usable(rb, now)
	}
	if err != nil && !errors.Is(err, auth.ErrBadCredentials) {
		return err // a database failure is not remembered
	}
	v.mu.Lock()
	if len(v.active) >= 10000 {
		clear(v.active)
	}
	v.active[subject] = activeEntry{err: err, at: now}
	v.mu.Unlock()
	return err
}
