package content

// The referrers page sizes when none are configured (config referrers-page-size and
// referrers-max-page-size have the same defaults).
const (
	DefaultReferrersPageSize    = 1000
	DefaultMaxReferrersPageSize = 10000
)

// PageRule is the one rule for the size of a referrers page, used by every service that answers a
// referrers request (the local service and the Proxy Referrer API controller); the HTTP handler only
// parses n and passes it on. The zero value is the default rule.
type PageRule struct {
	size, largest int
}

// NewPageRule returns the rule with default page size size and largest page largest; 0 (or less) takes
// DefaultReferrersPageSize and DefaultMaxReferrersPageSize, and a size above largest is largest.
func NewPageRule(size, largest int) PageRule {
	return PageRule{size: size, largest: largest}.norm()
}

func (r PageRule) norm() PageRule {
	if r.largest <= 0 {
		r.largest = DefaultMaxReferrersPageSize
	}
	if r.size <= 0 {
		r.size = DefaultReferrersPageSize
	}
	r.size = min(r.size, r.largest)
	return r
}

// Size returns the size of the page a client asking for n entries gets: the default for n <= 0 (no n,
// or n=0), n itself up to the largest page, the largest page above it.
func (r PageRule) Size(n int) int {
	r = r.norm()
	switch {
	case n <= 0:
		return r.size
	case n > r.largest:
		return r.largest
	}
	return n
}
