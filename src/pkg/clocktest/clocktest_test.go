package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := clocktest.New(t0)
	require.Equal(t, t0, c.Now())
	c.Advance(time.Minute)
	require.Equal(t, t0.Add(time.Minute), c.Now())
	c.Set(t0.Add(-time.Hour))
	require.Equal(t, t0.Add(-time.Hour), c.Now())

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Advance(time.Second)
			_ = c.Now()
		}()
	}
	wg.Wait()
	require.Equal(t, t0.Add(-time.Hour+8*time.Second), c.Now())
}
