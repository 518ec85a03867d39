// Package secret encrypts registry credentials at rest with AES-256-GCM.
//
// A Box seals a plaintext into a printable string "v1:" + base64(nonce || ciphertext || tag) with a fresh
// random 96-bit nonce per call, and opens such strings again, detecting any modification. The key lives in
// a file of its own (see LoadOrCreateKey), never in the database that holds the sealed values.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// prefixV1 marks AES-256-GCM with a 12-byte random nonce and standard padded base64.
const prefixV1 = "v1:"

var (
	// ErrMalformed reports a sealed string that is not of a known version or not well formed.
	ErrMalformed = errors.New("secret: malformed sealed value")
	// ErrDecrypt reports a sealed string that fails authentication: it was modified, or sealed with another key.
	ErrDecrypt = errors.New("secret: sealed value does not authenticate (tampered, or sealed with another key)")
)

// Box seals and opens secrets with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a KeySize-byte key. The key is not retained beyond the cipher's own copy.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext and returns "v1:" followed by base64 of nonce||ciphertext. Sealing the same
// plaintext twice gives different strings. The empty string is sealed like any other value.
func (b *Box) Seal(plaintext string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: reading random nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(prefixV1))
	return prefixV1 + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value produced by Seal. It returns an error wrapping ErrMalformed when sealed is not a
// well-formed value of a known version, and ErrDecrypt when authentication fails.
func (b *Box) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, prefixV1)
	if !ok {
		return "", fmt.Errorf("%w: unknown version prefix", ErrMalformed)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	ns := b.aead.NonceSize()
	if len(raw) < ns+b.aead.Overhead() {
		return "", fmt.Errorf("%w: too short", ErrMalformed)
	}
	plain, err := b.aead.Open(nil, raw[:ns], raw[ns:], []byte(prefixV1))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(plain), nil
}

// IsSealed reports whether s looks like a value produced by Seal (it has a known version prefix). It does
// not authenticate s.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefixV1) }
