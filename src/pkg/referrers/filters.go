package referrers

import (
	"hash/maphash"
	"slices"
	"time"

	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// maxFilteredPerSubject is how many distinct artifactType filters of one subject are asked upstream
// and cached; maxFilteredSubjects bounds the subjects tracked.
const (
	maxFilteredPerSubject = 16
	maxFilteredSubjects   = 4096
)

// filterBudget counts, per subject (the cache key of its unfiltered list), the filtered lists this
// process has asked the upstream for and cached, and refuses new ones beyond maxFilteredPerSubject
// within the cache TTL: a client sending 2000 distinct artifactType values would otherwise cost 2000
// upstream requests and 2000 cache entries kept for a week. It is in-process and bounded: a cluster of
// N nodes admits at most N times the budget, and when more than maxFilteredSubjects subjects are
// tracked the oldest counts are forgotten (syncutil.TTLMap). Safe for concurrent use.
type filterBudget struct {
	ttl  time.Duration
	seed maphash.Seed
	seen *syncutil.TTLMap[string, []uint64] // unfiltered key -> hashes of the filtered keys admitted
}

func newFilterBudget(ttl time.Duration, now func() time.Time) *filterBudget {
	return &filterBudget{ttl: ttl, seed: maphash.MakeSeed(), seen: syncutil.NewTTLMap[string, []uint64](maxFilteredSubjects, now)}
}

// admit reports whether the filtered list key of the subject whose unfiltered list is baseKey may be
// asked upstream and cached: it was admitted before, or the subject still has room.
func (b *filterBudget) admit(baseKey, key string) bool {
	h := maphash.String(b.seed, key) // a collision admits one filter more than counted: harmless
	ok := false
	b.seen.Update(baseKey, b.ttl, func(keys []uint64, _ bool) []uint64 {
		switch {
		case slices.Contains(keys, h):
			ok = true
		case len(keys) < maxFilteredPerSubject:
			ok = true
			keys = append(keys, h)
		}
		return keys
	})
	return ok
}
