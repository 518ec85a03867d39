package lease

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Local grants leases within one process: for a single node (SQLite, no Redis), where nothing else
// competes. It behaves as Redis does, with the clock of the process.
type Local struct {
	now func() time.Time

	mu     sync.Mutex
	leases map[string]localLease
	fence  int64 // one counter for every name: each grant's token is larger than all earlier ones
}

type localLease struct {
	token   int64
	expires time.Time
}

var _ Locker = (*Local)(nil)

// localPrune is the count of leases above which an acquisition drops the expired ones.
const localPrune = 1024

// NewLocal returns an in-process Locker.
func NewLocal() *Local {
	return &Local{now: time.Now, leases: map[string]localLease{}}
}

// TryAcquire implements Locker.
func (m *Local) TryAcquire(ctx context.Context, name string, ttl time.Duration) (*Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if ttl <= 0 {
		return nil, false, errors.New("lease: ttl must be positive")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.leases[name]; ok && now.Before(l.expires) {
		return nil, false, nil
	}
	if len(m.leases) >= localPrune {
		for n, l := range m.leases {
			if !now.Before(l.expires) {
				delete(m.leases, n)
			}
		}
	}
	m.fence++
	m.leases[name] = localLease{token: m.fence, expires: now.Add(ttl)}
	return newLease(m, name, m.fence, ttl), true, nil
}

// current returns whether name is held with token now. mu is held.
func (m *Local) current(name string, token int64) bool {
	l, ok := m.leases[name]
	return ok && l.token == token && m.now().Before(l.expires)
}

func (m *Local) renew(ctx context.Context, name string, token int64, ttl time.Duration) (bool, error) {
	return m.ifCurrent(ctx, name, token, func() { m.leases[name] = localLease{token: token, expires: m.now().Add(ttl)} })
}

func (m *Local) held(ctx context.Context, name string, token int64) (bool, error) {
	return m.ifCurrent(ctx, name, token, func() {})
}

func (m *Local) release(ctx context.Context, name string, token int64) (bool, error) {
	return m.ifCurrent(ctx, name, token, func() { delete(m.leases, name) })
}

// ifCurrent runs change with mu held when name is held with token now, and reports whether it was; a
// done ctx gives its error.
func (m *Local) ifCurrent(ctx context.Context, name string, token int64, change func()) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.current(name, token) {
		return false, nil
	}
	change()
	return true, nil
}
