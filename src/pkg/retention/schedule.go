package retention

import (
	"context"
	"errors"
	"time"

	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// maxSlots bounds the schedule times walked in one tick (a per-second cron over a long pause).
const maxSlots = 100000

// ScheduleLookback is how far back the first tick of a node looks for a schedule time: twice the
// schedule's interval, so that a slot is seen whichever node ticks next (lease.Every runs the schedule on
// one node per interval, a few seconds late at most, or RunTTL late when the ticking node died).
const ScheduleLookback = 2 * ScheduleInterval

// ScheduleInterval is how often the schedule ticks (on one node of the cluster).
const ScheduleInterval = time.Minute

// Tick runs, one after another, the policies whose cron schedule had a time in (since, now], running the
// latest such time of each: since is this node's previous tick or ScheduleLookback ago, whichever is
// earlier (so that slots during this node's own long tick are caught up, and a node that did not tick
// for a while sees the slots another node may have left). The slot, the schedule time, is recorded with
// the execution, so a slot runs once across nodes however many ticks see it.
func (s *Service) Tick(ctx context.Context) {
	now := s.o.Now()
	since := now.Add(-ScheduleLookback)
	s.mu.Lock()
	if !s.lastRun.IsZero() && s.lastRun.Before(since) {
		since = s.lastRun
	}
	s.lastRun = now
	s.mu.Unlock()
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
		for t, n := sched.Next(since), 0; !t.After(now) && !t.IsZero() && n < maxSlots; t, n = sched.Next(t), n+1 {
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

// ScheduleJob returns the lease.Job that ticks the schedule, for lease.Every to run once per
// ScheduleInterval across the nodes. A tick stops when Close is called, and Close waits for it.
func (s *Service) ScheduleJob() lease.Job {
	return func(ctx context.Context) error {
		s.mu.Lock()
		if s.base.Err() != nil { // closed: no wg.Add after Close's Wait began
			s.mu.Unlock()
			return nil
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.base, cancel)
		defer stop()
		s.Tick(ctx)
		return nil
	}
}
