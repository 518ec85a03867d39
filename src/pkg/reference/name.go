package reference

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// MaxNameLength is the longest repository name accepted, in bytes.
const MaxNameLength = 255

// MaxTagLength is the longest tag accepted, in bytes.
const MaxTagLength = 128

// ValidateName checks a repository name against the distribution-spec grammar
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// with at most MaxNameLength bytes, and Berth's rule that a name has at least two components
// (<project>/<repository...>). The error wraps ErrNameInvalid; for a well-formed one-component name it
// is ErrNameNoProject (which also wraps ErrNameInvalid).
func ValidateName(name string) error {
	components, ok := scanName(name)
	if !ok {
		return errorf(ErrNameInvalid, name)
	}
	if components < 2 {
		return errorf(ErrNameNoProject, name)
	}
	return nil
}

// scanName reports whether name follows the grammar and length limit, and how many components it has.
func scanName(name string) (components int, ok bool) {
	if len(name) == 0 || len(name) > MaxNameLength {
		return 0, false
	}
	i := 0
	for {
		// One component: alnum run, then (separator alnum run)*.
		if !isAlnumLower(name, i) {
			return 0, false
		}
		for isAlnumLower(name, i) {
			i++
		}
		for i < len(name) && name[i] != '/' {
			switch name[i] {
			case '.':
				i++
			case '_':
				i++
				if i < len(name) && name[i] == '_' {
					i++
				}
			case '-':
				for i < len(name) && name[i] == '-' {
					i++
				}
			default:
				return 0, false
			}
			if !isAlnumLower(name, i) {
				return 0, false
			}
			for isAlnumLower(name, i) {
				i++
			}
		}
		components++
		if i == len(name) {
			return components, true
		}
		i++ // the '/'
	}
}

// isAlnumLower reports whether s[i] exists and is [a-z0-9].
func isAlnumLower(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}

// ValidateTag checks a tag against [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. The error wraps ErrTagInvalid.
func ValidateTag(tag string) error {
	if !validTag(tag) {
		return errorf(ErrTagInvalid, tag)
	}
	return nil
}

func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > MaxTagLength {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ParseDigest accepts only "sha256:" with 64 and "sha512:" with 128 lower-case hex digits. A digest of
// another algorithm that follows the OCI digest grammar gets an error wrapping ErrDigestUnsupported;
// anything else, including a sha256 or sha512 digest with a wrong encoding, ErrDigestInvalid.
func ParseDigest(s string) (digest.Digest, error) {
	if validDigest(s) {
		return digest.Digest(s), nil
	}
	return "", digestError(s)
}

// validDigest is ParseDigest's success test.
func validDigest(s string) bool {
	var n int
	switch {
	case len(s) > 7 && s[:7] == "sha256:":
		n = 64
	case len(s) > 7 && s[:7] == "sha512:":
		n = 128
	default:
		return false
	}
	if len(s) != 7+n {
		return false
	}
	for i := 7; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// digestError classifies a digest that validDigest refused.
func digestError(s string) error {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || alg == "sha256" || alg == "sha512" || !validAlgorithm(alg) || !validEncoded(enc) {
		return errorf(ErrDigestInvalid, s)
	}
	return errorf(ErrDigestUnsupported, s)
}

// validAlgorithm checks [a-z0-9]+([+._-][a-z0-9]+)*.
func validAlgorithm(alg string) bool {
	prevSep := true // at the start a separator is not allowed
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case ('a' <= c && c <= 'z') || ('0' <= c && c <= '9'):
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// validEncoded checks [a-zA-Z0-9=_-]+.
func validEncoded(enc string) bool {
	if enc == "" {
		return false
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
