package syncutil

import (
	"sync"
	"time"
)

// Loop runs a function on a goroutine of its own every interval and, early, after Wake, until Stop:
// the background flusher of a write buffer (logbuf, the pull-time batcher). fn never runs
// concurrently with itself.
type Loop struct {
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartLoop starts calling fn every interval (> 0) and after each Wake.
func StartLoop(interval time.Duration, fn func()) *Loop {
	l := &Loop{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run(interval, fn)
	return l
}

func (l *Loop) run(interval time.Duration, fn func()) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.wake:
		}
		fn()
	}
}

// Wake asks for a call of fn soon without waiting for it; wakes while one is pending fold into it.
func (l *Loop) Wake() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stop ends the loop and waits for a call of fn in progress to return. Later calls do nothing.
func (l *Loop) Stop() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
	})
}
