package reference

import (
	"math"
	"strings"
)

// ParseRange parses a Range header (RFC 9110 §14.1.2) holding a single byte range, for a representation
// of size bytes, and returns the inclusive range to send:
//
//	bytes=a-b  a through min(b, size-1); a > b is invalid
//	bytes=a-   a through size-1
//	bytes=-n   the last n bytes (the whole representation if n >= size)
//
// The unit is matched case-insensitively and optional whitespace around the header is ignored. Errors
// wrap ErrRangeInvalid for a malformed header or more than one range (a server may then ignore the
// header), or ErrRangeNotSatisfiable when a >= size, n == 0, or size == 0 (there is no byte to send).
// Numbers too large for int64 are treated as the unbounded values they are: a first position past
// the end, a last position and a suffix length covering the whole representation.
func ParseRange(header string, size int64) (start, end int64, err error) {
	h := strings.Trim(header, " \t")
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return 0, 0, errorf(ErrRangeInvalid, header)
	}
	spec := strings.Trim(h[6:], " \t")
	if strings.IndexByte(spec, ',') >= 0 {
		return 0, 0, errorf(ErrRangeInvalid, header)
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, errorf(ErrRangeInvalid, header)
	}
	if first == "" {
		// Suffix range.
		n, ok := parseUint(last)
		if !ok {
			return 0, 0, errorf(ErrRangeInvalid, header)
		}
		if n == 0 || size <= 0 {
			return 0, 0, errorf(ErrRangeNotSatisfiable, header)
		}
		return size - min(n, size), size - 1, nil
	}
	a, ok := parseUint(first)
	if !ok {
		return 0, 0, errorf(ErrRangeInvalid, header)
	}
	b := int64(math.MaxInt64)
	if last != "" {
		if b, ok = parseUint(last); !ok || b < a {
			return 0, 0, errorf(ErrRangeInvalid, header)
		}
	}
	if a >= size {
		return 0, 0, errorf(ErrRangeNotSatisfiable, header)
	}
	return a, min(b, size-1), nil
}

// ParseContentRange parses the Content-Range header of an upload PATCH, which the OCI distribution spec
// gives as "<start>-<end>" (inclusive, start <= end). The form "bytes=<start>-<end>", which some clients
// send, is accepted too; the RFC 9110 response form "bytes <start>-<end>/<length>" is not, nor is any
// whitespace. Errors wrap ErrContentRangeInvalid.
func ParseContentRange(header string) (start, end int64, err error) {
	s := strings.TrimPrefix(header, "bytes=")
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, errorf(ErrContentRangeInvalid, header)
	}
	a, okA := parseUint(first)
	b, okB := parseUint(last)
	if !okA || !okB || a == math.MaxInt64 || b == math.MaxInt64 || b < a {
		return 0, 0, errorf(ErrContentRangeInvalid, header)
	}
	return a, b, nil
}

// parseUint parses one or more ASCII digits. A value past math.MaxInt64 saturates to math.MaxInt64.
func parseUint(s string) (int64, bool) {
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
