package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/token"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func newService(t *testing.T, signer *ecdsa.PrivateKey, opts token.Options, verify ...*ecdsa.PublicKey) *token.Service {
	t.Helper()
	ks, err := token.NewKeySet(signer, verify...)
	require.NoError(t, err)
	if opts.Service == "" {
		opts.Service = "berth"
	}
	s, err := token.New(ks, opts)
	require.NoError(t, err)
	return s
}

func TestIssueVerify(t *testing.T) {
	cur, old, alien := newKey(t), newKey(t), newKey(t)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc := newService(t, cur, token.Options{Now: clock, Expiry: 5 * time.Minute, Leeway: 10 * time.Second}, &old.PublicKey)
	grant := []token.ResourceActions{{Type: "repository", Name: "a/app", Actions: []string{"pull", "push"}}}

	tok, err := svc.Issue("robot$ci", grant)
	require.NoError(t, err)
	require.Equal(t, now, tok.IssuedAt)
	require.Equal(t, 5*time.Minute, tok.ExpiresIn)
	c, err := svc.Verify(tok.Raw)
	require.NoError(t, err)
	require.Equal(t, "robot$ci", c.Subject)
	require.Equal(t, grant, c.Access)

	p := &meta.Project{Name: "a"}
	require.True(t, c.Allows(p, "a/app", auth.Pull))
	require.True(t, c.Allows(p, "a/app", auth.Push))
	require.False(t, c.Allows(p, "a/app", auth.Delete))
	require.False(t, c.Allows(p, "a/other", auth.Pull))
	require.False(t, c.Allows(p, "", auth.Pull))

	// A previous key still verifies; an unknown one does not.
	oldTok, err := newService(t, old, token.Options{Now: clock}).Issue("admin", nil)
	require.NoError(t, err)
	_, err = svc.Verify(oldTok.Raw)
	require.NoError(t, err)
	alienTok, err := newService(t, alien, token.Options{Now: clock}).Issue("admin", nil)
	require.NoError(t, err)
	_, err = svc.Verify(alienTok.Raw)
	require.ErrorIs(t, err, auth.ErrBadCredentials)

	// Expiry and not-before, with the leeway, also for a token verified (and remembered) before.
	now = time.Date(2026, 12, 2, 11, 59, 0, 0, time.UTC)
	_, err = svc.Verify(tok.Raw)
	require.ErrorIs(t, err, auth.ErrBadCredentials, "remembered, but not valid yet at this time")
	now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC).Add(5*time.Minute + 5*time.Second)
	_, err = svc.Verify(tok.Raw)
	require.NoError(t, err, "within the leeway")
	now = now.Add(10 * time.Second)
	_, err = svc.Verify(tok.Raw)
	require.ErrorIs(t, err, auth.ErrBadCredentials)
	now = time.Date(2026, 12, 2, 11, 59, 0, 0, time.UTC)
	_, err = svc.Verify(tok.Raw)
	require.ErrorIs(t, err, auth.ErrBadCredentials, "not valid before it was issued")

	// Another audience or issuer.
	now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, o := range []token.Options{{Service: "other", Now: clock}, {Issuer: "other", Now: clock}} {
		other, err := newService(t, cur, o).Issue("admin", nil)
		require.NoError(t, err)
		_, err = svc.Verify(other.Raw)
		require.ErrorIs(t, err, auth.ErrBadCredentials)
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want token.ResourceActions
	}{
		{"repository:a/app:pull,push", token.ResourceActions{Type: "repository", Name: "a/app", Actions: []string{"pull", "push"}}},
		{"repository:a/app:pull,pull", token.ResourceActions{Type: "repository", Name: "a/app", Actions: []string{"pull"}}},
		{"repository(plugin):a/app:pull", token.ResourceActions{Type: "repository", Name: "a/app", Actions: []string{"pull"}}},
		{"repository:host:5000/a/app:*", token.ResourceActions{Type: "repository", Name: "host:5000/a/app", Actions: []string{"*"}}},
		{"registry:catalog:*", token.ResourceActions{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
	} {
		got, err := token.ParseScope(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "repository", "repository:a", ":a:pull", "repository::pull"} {
		_, err := token.ParseScope(bad)
		require.Error(t, err, bad)
	}
}

func TestSigningKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "token.key")
	k, err := token.LoadOrCreateSigningKey(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := token.LoadOrCreateSigningKey(path)
	require.NoError(t, err)
	require.True(t, k.Equal(again), "the key is kept across starts")
	pub, err := token.LoadVerifyKey(path)
	require.NoError(t, err)
	require.True(t, k.PublicKey.Equal(pub))

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = token.LoadOrCreateSigningKey(path)
	require.ErrorContains(t, err, "readable by others")

	bad := filepath.Join(t.TempDir(), "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o600))
	_, err = token.LoadOrCreateSigningKey(bad)
	require.Error(t, err)
	_, err = token.LoadVerifyKey(bad)
	require.Error(t, err)
}

// TestTokenIsCompact: clients send the token with every request, so its size is part of every request's
// cost (docs/performance.md, "Bearer tokens on the referrers path"). The header holds only alg and a
// 16-character kid; tokens of releases with a 32-character kid still verify.
func TestTokenIsCompact(t *testing.T) {
	k := newKey(t)
	svc := newService(t, k, token.Options{})
	tok, err := svc.Issue("robot$ci-pipeline", []token.ResourceActions{{Type: "repository", Name: "library/app", Actions: []string{"pull"}}})
	require.NoError(t, err)
	parts := strings.Split(tok.Raw, ".")
	require.Len(t, parts, 3)
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"alg":"ES256","kid":"`+token.KeyID(&k.PublicKey)+`"}`, string(hdr))
	require.Len(t, token.KeyID(&k.PublicKey), 16)
	require.LessOrEqual(t, len(tok.Raw), 450, "token: %s", tok.Raw)

	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	old := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer: token.DefaultIssuer, Audience: jwt.ClaimStrings{"berth"}, Subject: "admin",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)), IssuedAt: jwt.NewNumericDate(time.Now()),
	})
	old.Header["kid"] = base64.RawURLEncoding.EncodeToString(sum[:])[:32]
	raw, err := old.SignedString(k)
	require.NoError(t, err)
	c, err := svc.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, "admin", c.Subject)
}
