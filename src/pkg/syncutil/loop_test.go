package syncutil_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/syncutil"
)

func TestLoopWakeRunsEarly(t *testing.T) {
	calls := make(chan struct{}, 4)
	l := syncutil.StartLoop(time.Hour, func() { calls <- struct{}{} })
	defer l.Stop()
	l.Wake()
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("Wake did not run fn")
	}
}

func TestLoopTicks(t *testing.T) {
	calls := make(chan struct{}, 4)
	l := syncutil.StartLoop(time.Millisecond, func() { calls <- struct{}{} })
	defer l.Stop()
	for range 2 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatal("the interval did not run fn")
		}
	}
}

// Stop waits for a call in progress, and nothing runs after it returned; a second Stop is harmless.
func TestLoopStopWaitsAndIsFinal(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var calls, after atomic.Int32
	var stopped atomic.Bool
	l := syncutil.StartLoop(time.Hour, func() {
		if stopped.Load() {
			after.Add(1)
		}
		if calls.Add(1) == 1 { // the first call blocks until released
			close(started)
			<-release
		}
	})
	l.Wake()
	<-started
	done := make(chan struct{})
	go func() { l.Stop(); close(done) }()
	select {
	case <-done:
		t.Fatal("Stop returned while fn was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-done
	stopped.Store(true)
	l.Wake()
	l.Stop()
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, after.Load(), "fn ran after Stop")
}
