// Package reference parses the references of the registry API: /v2/ URL paths, repository names, tags
// and digests (Range, Content-Range and pagination parameters are parsed by server/registry). Everything here is a pure
// function without allocation on the success path of ParseV2Path (it runs on every request), written as
// hand-made scanners rather than regular expressions.
//
// Every error wraps one of the sentinel errors below, so a handler picks the OCI error code with
// errors.Is:
//
//	ErrNotFound            -> 404 NOT_FOUND (no such route)
//	ErrNameInvalid         -> 400 NAME_INVALID (ErrNameNoProject wraps it: a one-component name)
//	ErrTagInvalid          -> 400 MANIFEST_INVALID
//	ErrDigestInvalid       -> 400 DIGEST_INVALID (ErrDigestUnsupported wraps it: not sha256/sha512)
//	ErrUploadIDInvalid     -> 404 BLOB_UPLOAD_UNKNOWN
package reference

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a path that is not a registry API route.
	ErrNotFound = errors.New("no such route")
	// ErrNameInvalid reports a repository name that breaks the distribution-spec grammar or is longer
	// than MaxNameLength.
	ErrNameInvalid = errors.New("invalid repository name")
	// ErrNameNoProject reports a well-formed repository name with a single component: Berth names are
	// <project>/<repository...>. It wraps ErrNameInvalid.
	ErrNameNoProject = fmt.Errorf("%w: a name needs a project and a repository component", ErrNameInvalid)
	// ErrTagInvalid reports a tag that breaks [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
	ErrTagInvalid = errors.New("invalid tag")
	// ErrDigestInvalid reports a malformed digest.
	ErrDigestInvalid = errors.New("invalid digest")
	// ErrDigestUnsupported reports a digest that follows the OCI digest grammar but is neither a sha256
	// nor a sha512 digest with lower-case hex of the right length. It wraps ErrDigestInvalid.
	ErrDigestUnsupported = fmt.Errorf("%w: unsupported algorithm or encoding", ErrDigestInvalid)
	// ErrUploadIDInvalid reports an upload session ID that cannot be one.
	ErrUploadIDInvalid = errors.New("invalid upload id")
)

// errorf wraps sentinel with the offending value, quoted and cut short so that hostile input cannot
// flood logs.
func errorf(sentinel error, value string) error {
	return fmt.Errorf("%w: %.100q", sentinel, value)
}
