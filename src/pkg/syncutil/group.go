// Package syncutil coalesces concurrent requests for the same thing into one piece of work (Group), and
// holds the one bounded, expiring map type for in-process caches keyed by client input (TTLMap).
package syncutil

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Group runs at most one fn per key at a time and hands its result to every caller that asked for that
// key meanwhile. Unlike golang.org/x/sync/singleflight, the work does not belong to the first caller:
//
//   - fn runs in its own goroutine on a context detached from the caller that started it
//     (context.WithoutCancel, so values such as trace IDs and loggers stay) and bounded by the Group's
//     timeout. A client hanging up therefore neither cancels the work nor fails the other callers, and
//     work nobody waits for any more still finishes (for example to fill a cache), within the timeout.
//   - Every caller, the first included, waits under its own context: when that context ends, Do returns
//     ctx.Err() at once and the others keep waiting.
//   - A panic in fn becomes a *PanicError returned to every caller instead of crashing the process.
//
// Results are not kept: the first Do for a key after fn returned runs fn again. The zero Group is not
// usable; use NewGroup. A Group is safe for concurrent use.
type Group[K comparable, V any] struct {
	timeout   time.Duration
	mu        sync.Mutex
	calls     map[K]*call[V]
	coalesced atomic.Uint64
}

// call is one run of fn; val and err are written before done is closed and only read after.
type call[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// NewGroup returns a Group whose fn runs are each bounded by timeout; timeout <= 0 means no bound other
// than fn's own.
func NewGroup[K comparable, V any](timeout time.Duration) *Group[K, V] {
	return &Group[K, V]{timeout: timeout, calls: map[K]*call[V]{}}
}

// Do returns the result of fn for key, running fn unless a run for key is already in progress, in which
// case it waits for that run's result instead. shared is true when the result came from a run another
// caller started (such callers are counted by Coalesced). If ctx ends first, Do returns ctx.Err()
// without waiting further; the run goes on for the others.
//
// fn receives a context that carries ctx's values but not its cancellation, ended by the Group's timeout.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(ctx context.Context) (V, error)) (v V, shared bool, err error) {
	if err := ctx.Err(); err != nil {
		return v, false, err
	}
	g.mu.Lock()
	c, inFlight := g.calls[key]
	if inFlight {
		g.coalesced.Add(1)
	} else {
		c = &call[V]{done: make(chan struct{})}
		g.calls[key] = c
		go g.run(context.WithoutCancel(ctx), key, c, fn)
	}
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, inFlight, c.err
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// Coalesced returns how many Do calls so far joined a run another caller had started instead of starting
// their own (a monotonic counter, for metrics).
func (g *Group[K, V]) Coalesced() uint64 { return g.coalesced.Load() }

// run executes fn for key and publishes its result to c's waiters.
func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	normalReturn := false
	defer func() {
		if r := recover(); r != nil {
			c.err = &PanicError{Value: r, Stack: debug.Stack()}
		} else if !normalReturn {
			c.err = errGoexit
		}
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn(ctx)
	normalReturn = true
}

// errGoexit is returned to the callers when fn called runtime.Goexit.
var errGoexit = errors.New("syncutil: coalesced function called runtime.Goexit")

// PanicError is the error every caller of Do receives when fn panicked. Its message names the panic
// value only; log Stack where the error is handled.
type PanicError struct {
	Value any    // what fn panicked with
	Stack []byte // the stack of the panicking goroutine
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("syncutil: coalesced function panicked: %v", p.Value)
}

// Unwrap returns the panic value when it is an error, so errors.Is and errors.As see through.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}
