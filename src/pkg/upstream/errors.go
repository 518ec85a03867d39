package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// Kind classifies an upstream failure by what the caller should do about it.
type Kind int

const (
	// NotFound means the upstream answered 404 for the repository, manifest, tag or blob. It is the upstream's
	// authoritative answer, not a failure of the upstream.
	NotFound Kind = iota + 1
	// Unauthorized means the upstream refused the request (401 after the authentication flow, or 403), or the
	// token service refused the credentials.
	Unauthorized
	// RateLimited means the upstream (or its token service) answered 429.
	RateLimited
	// Unavailable means the upstream could not be reached, timed out, or answered 5xx.
	Unavailable
	// Invalid means the upstream answered, but not acceptably: an unexpected status, a malformed or oversize
	// body, a wrong content type, a digest mismatch, a Link to another origin, too many pages. Also used for
	// malformed arguments (an unparsable digest).
	Invalid
	// Unsupported means the upstream or the endpoint configuration asks for something this client does not do
	// (an unknown registry type, a /v2/ endpoint that is not there, a schema 1 manifest).
	Unsupported
)

var kindNames = map[Kind]string{
	NotFound: "not found", Unauthorized: "unauthorized", RateLimited: "rate limited",
	Unavailable: "unavailable", Invalid: "invalid", Unsupported: "unsupported",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is every error the client returns. Status is the upstream's HTTP status (0 when no response was
// read), Code the first OCI error code of the upstream's error body ("" when none), Err the cause.
// Error texts never contain credentials or tokens.
type Error struct {
	Kind   Kind
	Status int
	Code   string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream registry: ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (status %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func newError(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the Kind of the *Error inside err, or 0 when err holds none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// IsNotFound reports whether err is, or wraps, an *Error of kind NotFound.
func IsNotFound(err error) bool { return KindOf(err) == NotFound }

// IsUnauthorized reports whether err is, or wraps, an *Error of kind Unauthorized.
func IsUnauthorized(err error) bool { return KindOf(err) == Unauthorized }

// IsRateLimited reports whether err is, or wraps, an *Error of kind RateLimited.
func IsRateLimited(err error) bool { return KindOf(err) == RateLimited }

// IsInvalid reports whether err is, or wraps, an *Error of kind Invalid.
func IsInvalid(err error) bool { return KindOf(err) == Invalid }

// kindForStatus maps an unsuccessful HTTP status to a Kind.
func kindForStatus(status int) Kind {
	switch {
	case status == http.StatusNotFound:
		return NotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Unauthorized
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status >= 500:
		return Unavailable
	default:
		return Invalid
	}
}

// errorBodyPeek bounds how much of an error response is read to find its OCI error code.
const errorBodyPeek = 64 << 10

// statusError turns an unsuccessful response into an *Error, reading the OCI error code from (a bounded
// prefix of) the body, and drains and closes the body.
func statusError(resp *http.Response) *Error {
	defer closeBody(resp)
	e := &Error{Kind: kindForStatus(resp.StatusCode), Status: resp.StatusCode}
	if resp.Request != nil && resp.Request.Method != http.MethodHead {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyPeek))
		e.Code = firstErrorCode(body)
	}
	e.Err = fmt.Errorf("%s %s: %s", requestMethod(resp), redactedPath(resp), http.StatusText(resp.StatusCode))
	return e
}

// firstErrorCode returns the code of the first entry of an OCI error body, or "".
func firstErrorCode(body []byte) string {
	var eb struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

func requestMethod(resp *http.Response) string {
	if resp.Request == nil {
		return ""
	}
	return resp.Request.Method
}

// redactedPath names the request URL without query or credentials: host and path only.
func redactedPath(resp *http.Response) string {
	if resp.Request == nil || resp.Request.URL == nil {
		return ""
	}
	return resp.Request.URL.Host + resp.Request.URL.EscapedPath()
}

// drainLimit bounds how much of an unread body is discarded so the connection can be reused; past it the
// connection is closed instead.
const drainLimit = 64 << 10

// closeBody discards a bounded remainder of resp's body and closes it. Safe on a nil response.
func closeBody(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}

// ClientError is the one map from an upstream failure to the error a client of Berth sees, used by
// every path that asks an upstream (proxy pulls, tag lists, referrers). An *errcode.Error in err's chain
// is returned as it is. notFound is the code of an upstream NotFound (MANIFEST_UNKNOWN, BLOB_UNKNOWN,
// NAME_UNKNOWN). The others:
//
//   - RateLimited: 429 TOOMANYREQUESTS, deliberately not 503. Every Berth node shares the upstream's
//     quota, so retrying at once elsewhere does not help; 429 is the distribution-spec code that makes
//     docker, containerd, oras and crane back off instead of failing over.
//   - Unauthorized (credentials refused after authentication) and Unavailable (network, timeout, 5xx):
//     503 UPSTREAM_UNAVAILABLE.
//   - Invalid (an answer that breaks the protocol or Berth's limits): 502 UPSTREAM_INVALID.
//
// The messages never quote the cause (addresses, dial errors); it stays on the error for the log.
func ClientError(err error, notFound errcode.Code) error {
	if err == nil {
		return nil
	}
	if e := errcode.As(err); e != nil {
		return e
	}
	switch KindOf(err) {
	case NotFound:
		return notFound.WithMessage("unknown to the upstream registry")
	case RateLimited:
		return errcode.ErrTooManyRequests.Wrap(err, "the upstream registry is rate-limiting requests")
	case Unauthorized:
		return errcode.ErrUpstreamUnavailable.Wrap(err, "the upstream registry refused Berth's credentials")
	case Invalid:
		return errcode.ErrUpstreamInvalid.Wrap(err, "the upstream registry sent an invalid response")
	}
	return errcode.ErrUpstreamUnavailable.Wrap(err, "the upstream registry is unavailable")
}
