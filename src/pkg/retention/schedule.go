package retention

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// maxSlots bounds the schedule times walked in one tick (a per-second cron over a long pause).
const maxSlots = 100000

// Tick runs, one after another, the policies whose cron schedule had a time in (previous tick, now];
// the first tick only remembers now (missed times while no node ran are not caught up). Every node
// ticks: the slot, the schedule time, is recorded with the execution and runs once across nodes.
func (s *Service) Tick(ctx context.Context) {
	now := s.o.Now()
	s.mu.Lock()
	last := s.lastRun
	s.lastRun = now
	s.mu.Unlock()
	if last.IsZero() || !now.After(last) {
		return
	}
	policies, err := s.o.Store.ListRetentionPolicies(ctx)
	if err != nil {
		s.o.Log.WarnContext(ctx, "retention schedule: listing policies failed", "err", err)
		return
	}
	for _, row := range policies {
		p, err := decode(row)
		if err != nil {
			s.o.Log.WarnContext(ctx, "retention schedule: unreadable policy", "policy", row.ID, "err", err)
			continue
		}
		sched, err := p.Schedule()
		if err != nil || sched == nil {
			continue
		}
		var slot time.Time
		for t, n := sched.Next(last), 0; !t.After(now) && !t.IsZero() && n < maxSlots; t, n = sched.Next(t), n+1 {
			slot = t
		}
		if slot.IsZero() {
			continue
		}
		e, err := s.Execute(ctx, p.ID, TriggerSchedule, false, slot)
		switch {
		case errors.Is(err, meta.ErrConflict):
			s.o.Log.DebugContext(ctx, "retention schedule: another node runs this slot", "policy", p.ID, "slot", slot)
		case err != nil:
			s.o.Log.WarnContext(ctx, "retention schedule: run failed", "policy", p.ID, "err", err)
		default:
			s.o.Log.InfoContext(ctx, "retention run", "policy", p.ID, "execution", e.ID, "status", e.Status)
		}
	}
}

// RunSchedule ticks every interval until ctx ends or Close is called (which waits for it).
func (s *Service) RunSchedule(ctx context.Context, every time.Duration) {
	s.wg.Add(1)
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	s.Tick(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Tick(ctx)
		}
	}
}
