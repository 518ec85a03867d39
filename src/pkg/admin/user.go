package admin

import (
	"regexp"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
)

// userNameRE is what Berth accepts as a user name: 1 to 255 characters, none of Harbor's forbidden
// characters (,"~#$%), no white space and no control characters.
var userNameRE = regexp.MustCompile(`^[^,"~#$%\s\x00-\x1f]{1,255}$`)

// ValidateUserName checks a new user's name.
func ValidateUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return errcode.ErrBadRequest.WithMessage("username %q is invalid: 1 to 255 characters without spaces or any of ,\"~#$%%", name)
	}
	return nil
}

// PasswordHash checks a new password against auth.ValidatePassword (BAD_REQUEST with its reason) and
// returns the hash to store.
func PasswordHash(password string) (string, error) {
	if err := auth.ValidatePassword(password); err != nil {
		return "", errcode.ErrBadRequest.WithMessage("%s", err.Error())
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", errcode.ErrInternal.Wrap(err, "hashing the password")
	}
	return hash, nil
}
