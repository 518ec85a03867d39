package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySet holds the token signing key and the public keys tokens are verified with. The current key
// signs; keys of earlier rotations (and of other nodes) only verify, so tokens they signed stay valid
// until they expire.
type KeySet struct {
	signer *ecdsa.PrivateKey
	kid    string
	verify map[string]*ecdsa.PublicKey // by key ID; holds the signer's public key too
}

// NewKeySet returns a key set that signs with signer and verifies with it and with every key of verify.
func NewKeySet(signer *ecdsa.PrivateKey, verify ...*ecdsa.PublicKey) (*KeySet, error) {
	if signer == nil || signer.Curve != elliptic.P256() {
		return nil, errors.New("token: the signing key must be an ECDSA P-256 key (ES256)")
	}
	ks := &KeySet{signer: signer, verify: map[string]*ecdsa.PublicKey{}}
	ks.kid = KeyID(&signer.PublicKey)
	ks.verify[ks.kid] = &signer.PublicKey
	for _, k := range verify {
		if k == nil || k.Curve != elliptic.P256() {
			return nil, errors.New("token: a verification key must be an ECDSA P-256 key (ES256)")
		}
		ks.verify[KeyID(k)] = k
	}
	return ks, nil
}

// keyIDLen is the length of a key ID: 96 bits of a hash name the handful of keys a key set holds.
const keyIDLen = 16

// KeyID names a public key: the unpadded base64url SHA-256 of its DER (PKIX) encoding, cut to keyIDLen
// characters. Tokens carry it in their "kid" header so the verifier picks the key without trying each;
// the signature, not the name, is what is checked.
func KeyID(k *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])[:keyIDLen]
}

// SigningKeyID returns the key ID of the current signing key.
func (ks *KeySet) SigningKeyID() string { return ks.kid }

// LoadOrCreateSigningKey reads the PEM ECDSA P-256 private key at path, generating one (mode 0600) when
// the file does not exist. A key file readable by group or others is refused: anyone who reads it can
// sign tokens for every repository.
func LoadOrCreateSigningKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token signing key %s is readable by others (mode %o): restrict it to 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path) //nolint:gosec // the path is the operator's setting
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	k, err := parsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", path, err)
	}
	return k, nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	// O_EXCL: two nodes starting at once on a shared directory do not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // operator's path
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateSigningKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	return k, nil
}

// LoadVerifyKey reads a PEM file holding an ECDSA P-256 public key ("PUBLIC KEY") or private key
// ("PRIVATE KEY", "EC PRIVATE KEY"; only its public half is kept).
func LoadVerifyKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the path is the operator's setting
	if err != nil {
		return nil, fmt.Errorf("token verification key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("token verification key %s: no PEM block", path)
	}
	if blk.Type == "PUBLIC KEY" {
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("token verification key %s: %w", path, err)
		}
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token verification key %s: not an ECDSA P-256 key", path)
		}
		return k, nil
	}
	k, err := parsePrivate(b)
	if err != nil {
		return nil, fmt.Errorf("token verification key %s: %w", path, err)
	}
	return &k.PublicKey, nil
}

func parsePrivate(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return ek, nil
}
