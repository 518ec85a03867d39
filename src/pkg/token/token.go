// Package token issues and verifies the registry's bearer tokens, as Docker's token authentication
// specification describes (https://distribution.github.io/distribution/spec/auth/token/ and
// .../spec/auth/jwt/): a short-lived JWT signed with ES256 whose "access" claim lists the repositories
// and actions granted. It holds no HTTP or database code: server/token serves the endpoint.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// Defaults of Options.
const (
	DefaultExpiry = 5 * time.Minute
	DefaultLeeway = 30 * time.Second
	DefaultIssuer = "berth-token-issuer"
)

// Options tune a Service.
type Options struct {
	Service string        // the audience: tokens for another service are refused (required)
	Issuer  string        // iss of issued tokens, required of verified ones (default DefaultIssuer)
	Expiry  time.Duration // lifetime of an issued token (default DefaultExpiry)
	Leeway  time.Duration // clock skew tolerated on exp, nbf and iat (default DefaultLeeway)
	Now     func() time.Time
}

// Service issues and verifies tokens.
type Service struct {
	keys *KeySet
	opts Options
	// verified remembers tokens whose signature checked out (raw token -> claims) until they expire:
	// clients send the same token with every request, and an ES256 verification costs more than a
	// warm manifest GET. Their times are checked again on every use.
	verified *syncutil.TTLMap[string, *Claims]
}

// verifiedCacheSize bounds Service.verified (a few MB at most).
const verifiedCacheSize = 4096

// New returns a Service signing with keys.
func New(keys *KeySet, opts Options) (*Service, error) {
	if keys == nil || opts.Service == "" {
		return nil, errors.New("token: a key set and a service name are required")
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.Expiry <= 0 {
		opts.Expiry = DefaultExpiry
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{keys: keys, opts: opts, verified: syncutil.NewTTLMap[string, *Claims](verifiedCacheSize, opts.Now)}, nil
}

// Name is the service name tokens are issued for.
func (s *Service) Name() string { return s.opts.Service }

// Claims are a token's claims: the registered ones and the spec's "access".
type Claims struct {
	jwt.RegisteredClaims
	Access []ResourceActions `json:"access"`
}

// Token is an issued token.
type Token struct {
	Raw       string
	IssuedAt  time.Time
	ExpiresIn time.Duration
}

// Issue signs a token for subject ("" = anonymous) granting access.
func (s *Service) Issue(subject string, access []ResourceActions) (Token, error) {
	now := s.opts.Now().Truncate(time.Second)
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	if access == nil {
		access = []ResourceActions{}
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.opts.Issuer, Subject: subject, Audience: jwt.ClaimStrings{s.opts.Service},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.Expiry)), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Access: access,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	// Clients send the token with every request and the server reads every byte of it, so it stays
	// short: no "typ" (optional, RFC 7519 section 5.1), a 16-character key ID, a base64url jti.
	delete(t.Header, "typ")
	t.Header["kid"] = s.keys.kid
	raw, err := t.SignedString(s.keys.signer)
	if err != nil {
		return Token{}, fmt.Errorf("token: signing: %w", err)
	}
	return Token{Raw: raw, IssuedAt: now, ExpiresIn: s.opts.Expiry}, nil
}

// Verify checks raw's signature against the key set, its issuer, audience (the service), expiry and
// not-before times (with the leeway), and returns its claims. Every failure wraps auth.ErrBadCredentials.
func (s *Service) Verify(raw string) (*Claims, error) {
	if c, ok := s.verified.Get(raw); ok {
		now := s.opts.Now()
		if now.Before(c.NotBefore.Add(-s.opts.Leeway)) || !now.Before(c.ExpiresAt.Add(s.opts.Leeway)) {
			return nil, fmt.Errorf("%w: invalid token: outside its validity period", auth.ErrBadCredentials)
		}
		return c, nil
	}
	var c Claims
	_, err := jwt.ParseWithClaims(raw, &c, s.key,
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(s.opts.Issuer), jwt.WithAudience(s.opts.Service), jwt.WithExpirationRequired(),
		jwt.WithLeeway(s.opts.Leeway), jwt.WithTimeFunc(s.opts.Now))
	if err != nil {
		return nil, fmt.Errorf("%w: invalid token: %w", auth.ErrBadCredentials, err)
	}
	if c.NotBefore == nil { // jwt checks nbf only when present; the cache needs one
		c.NotBefore = c.IssuedAt
		if c.NotBefore == nil {
			c.NotBefore = jwt.NewNumericDate(time.Unix(0, 0))
		}
	}
	s.verified.Put(strings.Clone(raw), &c, c.ExpiresAt.Add(s.opts.Leeway).Sub(s.opts.Now()))
	return &c, nil
}

func (s *Service) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if len(kid) > keyIDLen { // tokens of releases that named keys with 32 characters
		kid = kid[:keyIDLen]
	}
	if k, ok := s.keys.verify[kid]; ok {
		return k, nil
	}
	return nil, errors.New("signed with an unknown key")
}

// ResourceActions is one entry of a token's access claim, and one requested scope.
type ResourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Scope types and actions of the spec (https://distribution.github.io/distribution/spec/auth/scope/).
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
	ActionPull     = "pull"
	ActionPush     = "push"
	ActionDelete   = "delete"
	ActionAll      = "*"
)

// ParseScope parses "<type>[(class)]:<name>:<action>[,<action>...]". The name may itself hold colons
// (a host:port), so the type ends at the first colon and the actions start after the last.
func ParseScope(s string) (ResourceActions, error) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 || typ == "" {
		return ResourceActions{}, fmt.Errorf("scope %q is not <type>:<name>:<actions>", s)
	}
	if j := strings.IndexByte(typ, '('); j > 0 && strings.HasSuffix(typ, ")") {
		typ = typ[:j]
	}
	var actions []string
	for _, a := range strings.Split(rest[i+1:], ",") {
		if a != "" && !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	return ResourceActions{Type: typ, Name: rest[:i], Actions: actions}, nil
}

// String is the scope's text form.
func (ra ResourceActions) String() string {
	return ra.Type + ":" + ra.Name + ":" + strings.Join(ra.Actions, ",")
}

// ActionName is the token action that stands for a registry action ("" for none: see auth.Action.Scope).
func ActionName(act auth.Action) string { return act.Scope() }

// Allows makes Claims an auth.Grant: act is granted on repository when an entry of its access claim
// names the repository with the action (or "*"). Project-wide questions (repository "") are refused.
func (c *Claims) Allows(_ *meta.Project, repository string, act auth.Action) bool {
	want := ActionName(act)
	if want == "" {
		return false
	}
	for _, ra := range c.Access {
		if ra.Type == TypeRepository && ra.Name == repository && repository != "" &&
			(slices.Contains(ra.Actions, want) || slices.Contains(ra.Actions, ActionAll)) {
			return true
		}
	}
	return false
}

// AllowsCatalog reports whether the token grants registry:catalog:*.
func (c *Claims) AllowsCatalog() bool {
	for _, ra := range c.Access {
		if ra.Type == TypeRegistry && ra.Name == "catalog" && slices.Contains(ra.Actions, ActionAll) {
			return true
		}
	}
	return false
}

var _ auth.Grant = (*Claims)(nil)
