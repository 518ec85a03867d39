package registry

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
)

// The HTTP parameters of the /v2/ API that are not references: Range and Content-Range headers and the
// n and last pagination parameters. Pure functions; every error wraps one of these sentinels, which
// params.go maps to OCI error codes:
//
//	errRangeInvalid        -> ignore the Range header and send the whole blob (RFC 9110 allows it)
//	errRangeNotSatisfiable -> 416 with Content-Range: bytes */<size>
//	errContentRangeInvalid -> 416 RANGE_INVALID
//	errPaginationInvalid   -> 400 PAGINATION_NUMBER_INVALID
var (
	// errRangeInvalid reports a Range header that is malformed or asks for more than one range. RFC 9110
	// lets a server ignore such a header and answer with the whole representation.
	errRangeInvalid = errors.New("invalid range")
	// errRangeNotSatisfiable reports a well-formed range that does not overlap the representation.
	errRangeNotSatisfiable = errors.New("range not satisfiable")
	// errContentRangeInvalid reports a malformed upload Content-Range header.
	errContentRangeInvalid = errors.New("invalid content range")
	// errPaginationInvalid reports an n query parameter that is not a non-negative integer.
	errPaginationInvalid = errors.New("invalid pagination parameter")
)

// quotedErr wraps sentinel with the offending value, quoted and cut short so that hostile input cannot
// flood logs.
func quotedErr(sentinel error, value string) error {
	return fmt.Errorf("%w: %.100q", sentinel, value)
}

// rangeBounds parses a Range header (RFC 9110 §14.1.2) holding a single byte range, for a representation
// of size bytes, and returns the inclusive range to send:
//
//	bytes=a-b  a through min(b, size-1); a > b is invalid
//	bytes=a-   a through size-1
//	bytes=-n   the last n bytes (the whole representation if n >= size)
//
// The unit is matched case-insensitively and optional whitespace around the header is ignored. Errors
// wrap errRangeInvalid for a malformed header or more than one range (a server may then ignore the
// header), or errRangeNotSatisfiable when a >= size, n == 0, or size == 0 (there is no byte to send).
// Numbers too large for int64 are treated as the unbounded values they are: a first position past
// the end, a last position and a suffix length covering the whole representation.
func rangeBounds(header string, size int64) (start, end int64, err error) {
	h := strings.Trim(header, " \t")
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return 0, 0, quotedErr(errRangeInvalid, header)
	}
	spec := strings.Trim(h[6:], " \t")
	if strings.IndexByte(spec, ',') >= 0 {
		return 0, 0, quotedErr(errRangeInvalid, header)
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, quotedErr(errRangeInvalid, header)
	}
	if first == "" {
		// Suffix range.
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, quotedErr(errRangeInvalid, header)
		}
		if n == 0 || size <= 0 {
			return 0, 0, quotedErr(errRangeNotSatisfiable, header)
		}
		return size - min(n, size), size - 1, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, quotedErr(errRangeInvalid, header)
	}
	b := int64(math.MaxInt64)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, 0, quotedErr(errRangeInvalid, header)
		}
	}
	if a >= size {
		return 0, 0, quotedErr(errRangeNotSatisfiable, header)
	}
	return a, min(b, size-1), nil
}

// contentRangeBounds parses the Content-Range header of an upload PATCH, which the OCI distribution spec
// gives as "<start>-<end>" (inclusive, start <= end). The form "bytes=<start>-<end>", which some clients
// send, is accepted too; the RFC 9110 response form "bytes <start>-<end>/<length>" is not, nor is any
// whitespace. Errors wrap errContentRangeInvalid.
func contentRangeBounds(header string) (start, end int64, err error) {
	s := strings.TrimPrefix(header, "bytes=")
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, quotedErr(errContentRangeInvalid, header)
	}
	a, okA := parseDigits(first)
	b, okB := parseDigits(last)
	if !okA || !okB || a == math.MaxInt64 || b == math.MaxInt64 || b < a {
		return 0, 0, quotedErr(errContentRangeInvalid, header)
	}
	return a, b, nil
}

// parseDigits parses one or more ASCII digits. A value past math.MaxInt64 saturates to math.MaxInt64.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue // keep checking that the rest are digits
		}
		n = n*10 + d
	}
	return n, true
}

// paginationParams reads the n and last query parameters of the tags and catalog lists. n must be a
// non-negative decimal integer; absent or empty it is 0, which means the handler's default; values
// above maxN are capped to maxN (when maxN > 0). last is returned as given, unchecked, since it is a tag
// or a repository name depending on the list. A parameter given twice, or a malformed n, returns an
// error wrapping errPaginationInvalid.
func paginationParams(q url.Values, maxN int) (n int, last string, err error) {
	ns := q["n"]
	ls := q["last"]
	if len(ns) > 1 || len(ls) > 1 {
		return 0, "", fmt.Errorf("%w: n or last given more than once", errPaginationInvalid)
	}
	if len(ls) == 1 {
		last = ls[0]
	}
	if len(ns) == 0 || ns[0] == "" {
		return 0, last, nil
	}
	v, ok := parseDigits(ns[0])
	if !ok {
		return 0, "", quotedErr(errPaginationInvalid, ns[0])
	}
	if v > math.MaxInt {
		v = math.MaxInt
	}
	n = int(v)
	if maxN > 0 && n > maxN {
		n = maxN
	}
	return n, last, nil
}
