// Package lease hands out named leases that every Berth node sharing a Redis (or, for a single node, one
// process) agrees on: at most one holder per name at a time, kept while the holder renews it and lost
// when it stops (a crashed node's lease expires after its TTL, and another node takes over).
//
// Each grant carries a fencing token, larger than the token of every earlier grant of the same name (as
// long as grants of a name are less than FenceTTL apart). A holder that is about to make its work visible
// calls Check: it fails once the lease expired or was granted to someone else, so a holder that was paused
// past its TTL does not commit on top of its successor.
//
// Two helpers build on it: Every runs a periodic job (the upload janitor, retention, GC) about once per
// interval across all nodes, and the proxy takes one lease per blob fill so that one node downloads.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrLost reports that a lease is no longer held by its holder: it expired, was released, or a later
// grant of the same name exists.
var ErrLost = errors.New("lease: lost")

// FenceTTL is how long the fencing counter of a name outlives its last grant.
const FenceTTL = 24 * time.Hour

// Locker grants leases. Implementations: Redis (shared by every node on one Redis and key prefix) and
// Local (one process).
type Locker interface {
	// TryAcquire takes the lease name for ttl when nobody holds it, without waiting. It returns ok=false
	// and a nil error when someone else holds it. ttl must be positive.
	TryAcquire(ctx context.Context, name string, ttl time.Duration) (l *Lease, ok bool, err error)
}

// backend is what a Locker implementation provides for the leases it grants: every call acts only while
// the lease name is still held with token.
type backend interface {
	renew(ctx context.Context, name string, token int64, ttl time.Duration) (bool, error)
	held(ctx context.Context, name string, token int64) (bool, error)
	release(ctx context.Context, name string, token int64) (bool, error)
}

// Lease is one grant of a name. Its methods are safe for concurrent use.
type Lease struct {
	name  string
	token int64
	ttl   time.Duration
	b     backend

	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	stopKeep context.CancelFunc // non-nil while Keep renews
	keepDone chan struct{}
}

func newLease(b backend, name string, token int64, ttl time.Duration) *Lease {
	return &Lease{name: name, token: token, ttl: ttl, b: b, lost: make(chan struct{})}
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

// Token is the fencing token of this grant.
func (l *Lease) Token() int64 { return l.token }

// Lost is closed once the holder knows the lease is gone: a renewal found it taken or expired, renewals
// failed for longer than the TTL, or Release ran.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// Check returns nil while this grant still holds the lease, ErrLost when it does not, or the backend's
// error. Call it just before making the leased work visible.
func (l *Lease) Check(ctx context.Context) error {
	select {
	case <-l.lost:
		return ErrLost
	default:
	}
	ok, err := l.b.held(ctx, l.name, l.token)
	return l.settle("check", ok, err)
}

// settle maps the backend's answer to an operation on the grant: its error wraps as "lease <name>:
// <op>", and not held marks the lease lost and gives ErrLost.
func (l *Lease) settle(op string, ok bool, err error) error {
	if err != nil {
		return fmt.Errorf("lease %s: %s: %w", l.name, op, err)
	}
	if !ok {
		l.markLost()
		return ErrLost
	}
	return nil
}

// Extend sets the remaining time of the lease to ttl (from now), or returns ErrLost.
func (l *Lease) Extend(ctx context.Context, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("lease: ttl must be positive")
	}
	ok, err := l.b.renew(ctx, l.name, l.token, ttl)
	return l.settle("extend", ok, err)
}

// Keep renews the lease every third of its TTL until StopKeeping, Release or ctx ends. A renewal that
// finds the lease gone, or renewals failing for a whole TTL, close Lost. Calling Keep again while it
// runs does nothing.
func (l *Lease) Keep(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopKeep != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := ctx.Done()
	go func() {
		select {
		case <-l.lost:
		case <-stop:
		}
		cancel()
	}()
	l.stopKeep, l.keepDone = cancel, make(chan struct{})
	go l.keep(ctx, stop, l.keepDone)
}

func (l *Lease) keep(ctx context.Context, stop <-chan struct{}, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(max(l.ttl/3, time.Millisecond))
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, max(l.ttl/3, 10*time.Millisecond))
		ok, err := l.b.renew(rctx, l.name, l.token, l.ttl)
		cancel()
		switch {
		case err == nil && !ok:
			l.markLost()
			return
		case err == nil:
			lastOK = time.Now()
		case time.Since(lastOK) >= l.ttl:
			l.markLost() // it may have expired meanwhile: stop acting as the holder
			return
		}
	}
}

// StopKeeping stops the renewals Keep started and waits for them to end; the lease stays held until its
// TTL passes (or Release).
func (l *Lease) StopKeeping() {
	l.mu.Lock()
	stop, done := l.stopKeep, l.keepDone
	l.stopKeep, l.keepDone = nil, nil
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Release stops renewing and gives the lease up so that another holder may take it at once. It returns
// ErrLost when the lease was no longer held (it expired, or a later grant exists).
func (l *Lease) Release(ctx context.Context) error {
	l.StopKeeping()
	defer l.markLost()
	ok, err := l.b.release(ctx, l.name, l.token)
	if err != nil {
		return fmt.Errorf("lease %s: release: %w", l.name, err)
	}
	if !ok {
		return ErrLost
	}
	return nil
}
