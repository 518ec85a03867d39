// Package errcode is Berth's one error type. Every error that reaches a client is an *Error carrying a
// registered Code; the code decides the HTTP status. Errors of any other type are answered as 500 UNKNOWN
// and their text is logged, never sent.
package errcode

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is a registered error code with its HTTP status and default message.
type Code struct {
	Value   string // the code string sent on the wire, e.g. "BLOB_UNKNOWN"
	Status  int    // the HTTP status it answers with
	Message string // the default message
}

// Error is an error with a code, a message and optional detail. It may wrap a cause, which is logged
// for 5xx errors but never sent to the client.
type Error struct {
	Code    Code
	Message string
	Detail  any
	Cause   error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code.Value, msg, e.Cause)
	}
	return e.Code.Value + ": " + msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same code value, so errors.Is(err, errcode.ErrBlobUnknown.New())
// and errors.Is(err, errcode.Code) style checks both work through IsCode.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code.Value == e.Code.Value
	}
	return false
}

// New returns an error with the code's default message.
func (c Code) New() *Error { return &Error{Code: c} }

// WithMessage returns an error with the given message.
func (c Code) WithMessage(format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns an error with the default message and the detail.
func (c Code) WithDetail(detail any) *Error { return &Error{Code: c, Detail: detail} }

// Wrap returns an error with the code and a cause. The cause's text is not sent to the client.
func (c Code) Wrap(cause error, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// WithDetail sets the detail and returns e.
func (e *Error) WithDetail(detail any) *Error { e.Detail = detail; return e }

// IsCode reports whether err is, or wraps, an *Error with code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code.Value == c.Value
}

// As returns the *Error inside err, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

func register(value string, status int, message string) Code {
	return Code{Value: value, Status: status, Message: message}
}

// Codes of the OCI distribution specification.
var (
	ErrBlobUnknown         = register("BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry")
	ErrBlobUploadInvalid   = register("BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid")
	ErrBlobUploadUnknown   = register("BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry")
	ErrDigestInvalid       = register("DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content")
	ErrManifestBlobUnknown = register("MANIFEST_BLOB_UNKNOWN", http.StatusNotFound, "manifest references a manifest or blob unknown to registry")
	ErrManifestInvalid     = register("MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid")
	ErrManifestUnknown     = register("MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry")
	ErrNameInvalid         = register("NAME_INVALID", http.StatusBadRequest, "invalid repository name")
	ErrNameUnknown         = register("NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry")
	ErrSizeInvalid         = register("SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length")
	ErrUnauthorized        = register("UNAUTHORIZED", http.StatusUnauthorized, "authentication required")
	ErrDenied              = register("DENIED", http.StatusForbidden, "requested access to the resource is denied")
	ErrUnsupported         = register("UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported")
	ErrTooManyRequests     = register("TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests")

	// Codes Berth adds for conditions the specification leaves open.
	ErrRangeInvalid        = register("RANGE_INVALID", http.StatusRequestedRangeNotSatisfiable, "requested range not satisfiable")
	ErrManifestTooLarge    = register("SIZE_INVALID", http.StatusRequestEntityTooLarge, "manifest exceeds the size limit")
	ErrPaginationInvalid   = register("PAGINATION_NUMBER_INVALID", http.StatusBadRequest, "invalid number of results requested")
	ErrUpstreamUnavailable = register("UPSTREAM_UNAVAILABLE", http.StatusServiceUnavailable, "upstream registry unavailable")
	ErrUpstreamInvalid     = register("UPSTREAM_INVALID", http.StatusBadGateway, "upstream registry sent an invalid response")
	ErrUnknown             = register("UNKNOWN", http.StatusInternalServerError, "unknown error")

	// Codes of the Harbor v2.0 REST API.
	ErrBadRequest    = register("BAD_REQUEST", http.StatusBadRequest, "bad request")
	ErrNotFound      = register("NOT_FOUND", http.StatusNotFound, "not found")
	ErrConflict      = register("CONFLICT", http.StatusConflict, "conflict")
	ErrForbidden     = register("FORBIDDEN", http.StatusForbidden, "forbidden")
	ErrAPIUnauth     = register("UNAUTHORIZED", http.StatusUnauthorized, "unauthorized")
	ErrPreconditions = register("PRECONDITION", http.StatusPreconditionFailed, "precondition failed")
	ErrMediaType     = register("UNSUPPORTED_MEDIA_TYPE", http.StatusUnsupportedMediaType, "unsupported media type")
	ErrInternal      = register("INTERNAL_SERVER_ERROR", http.StatusInternalServerError, "internal server error")
)
