package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id (RFC 9106) at OWASP's minimum parameters for it: 19 MiB, two
// passes, one lane. A check costs tens of milliseconds and 19 MiB on purpose; Authenticator caches
// successful checks briefly so that warm registry requests do not pay it each time. bcrypt was not
// chosen because it truncates or refuses passwords over 72 bytes, and Harbor allows 128 characters.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns the PHC-format argon2id hash of password with a random salt.
func HashPassword(password string) (string, error) {
	return hashWith(password, argonTime, argonMemory)
}

// hashWith hashes with the given passes and memory (KiB). Only the in-memory admin of NewAuthenticator,
// whose hash is never stored, uses lighter parameters than HashPassword.
func hashWith(password string, passes, memory uint32) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, passes, memory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memory, passes, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash reports a stored hash this package cannot read.
var errBadHash = errors.New("auth: unreadable password hash")

// CheckPassword reports whether password matches hash (made by HashPassword, possibly with other
// parameters). An unreadable hash matches nothing.
func CheckPassword(hash, password string) bool {
	ok, err := checkPassword(hash, password)
	return err == nil && ok
}

func checkPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil ||
		mem == 0 || mem > 1<<20 || iters == 0 || iters > 16 || threads == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when a user name is unknown, so that answering takes as long as for a
// known name with a wrong password.
var dummyHash = mustHash(hashWith("not a password of anyone", argonTime, argonMemory))

func mustHash(h string, err error) string {
	if err != nil {
		panic(err) // crypto/rand failing
	}
	return h
}

// ValidatePassword applies Harbor's password rule to a password set through the API: 8 to 128
// characters with at least one upper-case letter, one lower-case letter and one digit.
func ValidatePassword(p string) error {
	n := len([]rune(p))
	if n < 8 || n > 128 {
		return errors.New("the password must be 8 to 128 characters long")
	}
	var upper, lower, digit bool
	for _, r := range p {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		}
	}
	if !upper || !lower || !digit {
		return errors.New("the password must contain at least one upper-case letter, one lower-case letter and one digit")
	}
	return nil
}
