package cache

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// memoryEntryOverhead is the bookkeeping cost charged per entry on top of len(key)+len(value), so that
// many tiny entries cannot exceed the bound by much.
const memoryEntryOverhead = 64

// Memory is an in-process Cache for a single Berth instance. Values are bounded by a total size: an
// entry costs len(key)+len(value)+64 bytes, and when a Set would exceed the bound the least recently used
// entries (Get and Set count as use) are evicted. Expired values are dropped when they are next read or
// when they reach the end of the LRU list. Locks are kept apart from values, are not counted against the
// bound and are never evicted before their TTL.
type Memory struct {
	now      func() time.Time
	maxBytes int64

	mu          sync.Mutex
	used        int64
	lru         *list.List // of *memoryEntry; front = most recently used
	items       map[string]*list.Element
	locks       map[string]memoryLock
	lockSeq     uint64
	lockSweepAt int
}

var _ Cache = (*Memory)(nil)

type memoryEntry struct {
	key     string
	value   []byte
	expires time.Time
}

type memoryLock struct {
	token   uint64
	expires time.Time
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock makes the Memory cache read the time from now instead of time.Now (tests use it to expire
// entries without sleeping).
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) { m.now = now }
}

// NewMemory returns an empty Memory cache holding at most maxBytes of entries. A Set of an entry that
// alone exceeds maxBytes fails with ErrTooLarge (so maxBytes <= 0 stores no values; locks still work).
func NewMemory(maxBytes int64, opts ...MemoryOption) *Memory {
	m := &Memory{
		now:         time.Now,
		maxBytes:    maxBytes,
		lru:         list.New(),
		items:       map[string]*list.Element{},
		locks:       map[string]memoryLock{},
		lockSweepAt: 64,
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func entrySize(key string, value []byte) int64 {
	return int64(len(key)) + int64(len(value)) + memoryEntryOverhead
}

// Size reports the number of values held (including expired ones not yet dropped) and the bytes charged
// for them against the bound.
func (m *Memory) Size() (entries int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items), m.used
}

// Get implements Cache.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cache: memory get: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, ErrMiss
	}
	e := el.Value.(*memoryEntry)
	if !m.now().Before(e.expires) {
		m.remove(el)
		return nil, ErrMiss
	}
	m.lru.MoveToFront(el)
	return append([]byte{}, e.value...), nil
}

// View calls fn with the value stored under key without copying it, or returns an error wrapping
// ErrMiss. fn must neither modify b nor keep it after it returns. Stored values are never written to
// after Set (a Set replaces the slice), so fn runs outside the cache's lock.
func (m *Memory) View(ctx context.Context, key string, fn func(b []byte) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: memory view: %w", err)
	}
	m.mu.Lock()
	el, ok := m.items[key]
	if !ok {
		m.mu.Unlock()
		return ErrMiss
	}
	e := el.Value.(*memoryEntry)
	if !m.now().Before(e.expires) {
		m.remove(el)
		m.mu.Unlock()
		return ErrMiss
	}
	m.lru.MoveToFront(el)
	value := e.value
	m.mu.Unlock()
	return fn(value)
}

// Set implements Cache.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, "memory set", ttl); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	size := entrySize(key, value)
	el, exists := m.items[key]
	if size > m.maxBytes {
		if exists { // the caller meant to replace it: never leave the old value behind
			m.remove(el)
		}
		return fmt.Errorf("%w: %d bytes, bound %d", ErrTooLarge, size, m.maxBytes)
	}
	e := &memoryEntry{key: key, value: append([]byte{}, value...), expires: m.now().Add(ttl)}
	if exists {
		m.used -= entrySize(key, el.Value.(*memoryEntry).value)
		el.Value = e
		m.lru.MoveToFront(el)
	} else {
		m.items[key] = m.lru.PushFront(e)
	}
	m.used += size
	for m.used > m.maxBytes { // terminates: the entry just set fits alone and sits at the front
		m.remove(m.lru.Back())
	}
	return nil
}

// Delete implements Cache.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: memory delete: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	return nil
}

// remove drops el from the list and the index. m.mu must be held.
func (m *Memory) remove(el *list.Element) {
	e := m.lru.Remove(el).(*memoryEntry)
	delete(m.items, e.key)
	m.used -= entrySize(e.key, e.value)
}

// TryLock implements Cache.
func (m *Memory) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := checkTTL(ctx, "memory lock", ttl); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, held := m.locks[key]; held && now.Before(l.expires) {
		return nil, false, nil
	}
	m.lockSeq++
	token := m.lockSeq
	m.locks[key] = memoryLock{token: token, expires: now.Add(ttl)}
	m.sweepLocks(now)
	unlock := func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cache: memory unlock: %w", err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		l, held := m.locks[key]
		if !held || l.token != token {
			return ErrLockNotHeld
		}
		delete(m.locks, key)
		if !m.now().Before(l.expires) {
			return ErrLockNotHeld
		}
		return nil
	}
	return unlock, true, nil
}

// sweepLocks drops expired locks once the lock table has doubled since the last sweep, so that locks
// nobody released cost amortised O(1) and the table stays proportional to the live locks. m.mu must be
// held.
func (m *Memory) sweepLocks(now time.Time) {
	if len(m.locks) < m.lockSweepAt {
		return
	}
	for k, l := range m.locks {
		if !now.Before(l.expires) {
			delete(m.locks, k)
		}
	}
	m.lockSweepAt = 2*len(m.locks) + 64
}
