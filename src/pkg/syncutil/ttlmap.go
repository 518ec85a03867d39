package syncutil

import (
	"sync"
	"time"
)

// TTLMap is a map whose entries expire and whose size is bounded, for in-process caches keyed by what
// clients send (negative answers, freshness marks, per-subject counters). It never holds more than
// max entries: when an insert finds it full, expired entries are dropped, and if that freed less
// than a quarter of it, everything is (so an insert costs amortised O(1) even under a flood of keys,
// and a flood can only ever make the cache forget, never grow). Keys are kept as given: a caller whose
// key holds strings taken from a request must copy them (strings.Clone) so the entry does not pin the
// request's memory. Safe for concurrent use; the zero TTLMap is not usable, use NewTTLMap.
type TTLMap[K comparable, V any] struct {
	limit int
	now   func() time.Time
	// weigh and maxWeight, when set (Weighted), bound the sum of the values' weights too.
	weigh     func(V) int
	maxWeight int

	mu     sync.Mutex
	m      map[K]ttlEntry[V]
	weight int // sum of weigh over m (0 without weigh)
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

// NewTTLMap returns an empty map of at most limit entries (at least 1) whose expiry follows now (nil:
// time.Now).
func NewTTLMap[K comparable, V any](limit int, now func() time.Time) *TTLMap[K, V] {
	if now == nil {
		now = time.Now
	}
	return &TTLMap[K, V]{limit: max(limit, 1), now: now, m: map[K]ttlEntry[V]{}}
}

// Weighted bounds, besides the entry count, the sum of weigh(v) over the values held to maxWeight (a
// value heavier than maxWeight alone is not stored), with the same rule when an insert finds it full.
// Update changes a live entry's weight without that check. Call it before the map is used; it returns t.
func (t *TTLMap[K, V]) Weighted(maxWeight int, weigh func(V) int) *TTLMap[K, V] {
	t.weigh, t.maxWeight = weigh, maxWeight
	return t
}

// weightOf is v's weight (0 for an unweighted map).
func (t *TTLMap[K, V]) weightOf(v V) int {
	if t.weigh == nil {
		return 0
	}
	return t.weigh(v)
}

// remove drops k, keeping the weight. Called with mu held.
func (t *TTLMap[K, V]) remove(k K) {
	if e, ok := t.m[k]; ok {
		t.weight -= t.weightOf(e.v)
		delete(t.m, k)
	}
}

// Get returns the value under k while it has not expired.
func (t *TTLMap[K, V]) Get(k K) (v V, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if !ok {
		return v, false
	}
	if !t.now().Before(e.expires) {
		t.remove(k)
		return v, false
	}
	return e.v, true
}

// Put stores v under k for ttl (ttl <= 0: nothing is stored, and an existing entry is dropped).
func (t *TTLMap[K, V]) Put(k K, v V, ttl time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ttl <= 0 {
		t.remove(k)
		return
	}
	t.insert(k, v, ttl)
}

// insert stores a new or replaced entry, making room first. Called with mu held.
func (t *TTLMap[K, V]) insert(k K, v V, ttl time.Duration) {
	now := t.now()
	w := t.weightOf(v)
	if t.maxWeight > 0 && w > t.maxWeight {
		t.remove(k)
		return
	}
	t.remove(k)
	if len(t.m) >= t.limit || t.overweight(w) {
		for key, e := range t.m {
			if !now.Before(e.expires) {
				t.remove(key)
			}
		}
		if len(t.m) > t.limit*3/4 || t.overweight(w) {
			clear(t.m)
			t.weight = 0
		}
	}
	t.m[k] = ttlEntry[V]{v: v, expires: now.Add(ttl)}
	t.weight += w
}

// overweight reports whether adding w would pass the weight bound. Called with mu held.
func (t *TTLMap[K, V]) overweight(w int) bool {
	return t.maxWeight > 0 && t.weight+w > t.maxWeight
}

// Update replaces the value under k by f(old, present), keeping or setting its expiry: an entry that
// is live keeps its expiry, a new one gets ttl (ttl <= 0: f's result is returned but not stored). It
// returns what f returned. f runs under the map's lock: it must be quick and must not use the map.
// Used for counters and small sets that must change atomically.
func (t *TTLMap[K, V]) Update(k K, ttl time.Duration, f func(old V, present bool) V) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if ok && !t.now().Before(e.expires) {
		ok = false
	}
	if !ok {
		var zero V
		e.v = zero
	}
	nv := f(e.v, ok)
	switch {
	case ok:
		t.weight += t.weightOf(nv) - t.weightOf(e.v)
		t.m[k] = ttlEntry[V]{v: nv, expires: e.expires}
	case ttl > 0:
		t.insert(k, nv, ttl)
	}
	return nv
}

// Delete drops k.
func (t *TTLMap[K, V]) Delete(k K) {
	t.mu.Lock()
	t.remove(k)
	t.mu.Unlock()
}

// DeleteFunc drops every entry for which match returns true. match runs under the map's lock: it must
// be quick and must not use the map.
func (t *TTLMap[K, V]) DeleteFunc(match func(K, V) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if match(k, e.v) {
			t.remove(k)
		}
	}
}

// Clear drops every entry.
func (t *TTLMap[K, V]) Clear() {
	t.mu.Lock()
	clear(t.m)
	t.weight = 0
	t.mu.Unlock()
}

// Len returns the entries held, expired ones not yet dropped included.
func (t *TTLMap[K, V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
