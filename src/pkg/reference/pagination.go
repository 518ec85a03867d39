package reference

import (
	"fmt"
	"math"
	"net/url"
)

// ParsePagination reads the n and last query parameters of the tags and catalog lists. n must be a
// non-negative decimal integer; absent or empty it is 0, which means the handler's default; values
// above maxN are capped to maxN (when maxN > 0). last is returned as given, unchecked, since it is a tag
// or a repository name depending on the list. A parameter given twice, or a malformed n, returns an
// error wrapping ErrPaginationInvalid.
func ParsePagination(q url.Values, maxN int) (n int, last string, err error) {
	ns := q["n"]
	ls := q["last"]
	if len(ns) > 1 || len(ls) > 1 {
		return 0, "", fmt.Errorf("%w: n or last given more than once", ErrPaginationInvalid)
	}
	if len(ls) == 1 {
		last = ls[0]
	}
	if len(ns) == 0 || ns[0] == "" {
		return 0, last, nil
	}
	v, ok := parseUint(ns[0])
	if !ok {
		return 0, "", errorf(ErrPaginationInvalid, ns[0])
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
