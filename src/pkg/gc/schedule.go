package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Harbor's schedule types.
const (
	ScheduleNone   = "None"
	ScheduleManual = "Manual"
	ScheduleHourly = "Hourly"
	ScheduleDaily  = "Daily"
	ScheduleWeekly = "Weekly"
	ScheduleCustom = "Custom"
)

// cronParser reads Harbor's 6-field cron expressions (seconds first).
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ScheduleCron returns the cron expression a schedule type stands for, as Harbor fills it in: the
// given one for Custom (checked), none for None.
func ScheduleCron(typ, expr string) (string, error) {
	switch typ {
	case ScheduleNone:
		return "", nil
	case ScheduleHourly:
		return "0 0 * * * *", nil
	case ScheduleDaily:
		return "0 0 0 * * *", nil
	case ScheduleWeekly:
		return "0 0 0 * * 0", nil
	case ScheduleCustom:
		if _, err := cronParser.Parse(expr); err != nil {
			return "", fmt.Errorf("invalid cron %q (6 fields, seconds first): %w", expr, err)
		}
		return expr, nil
	}
	return "", fmt.Errorf("unknown schedule type %q (None, Hourly, Daily, Weekly, Custom, or Manual to run now)", typ)
}

// NextFire returns the first time after t that expr names; zero for an empty or invalid expr.
func NextFire(expr string, t time.Time) time.Time {
	if expr == "" {
		return time.Time{}
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return time.Time{}
	}
	return s.Next(t)
}

// Schedule runs scheduled collections until ctx ends: every interval it reads the schedule (so a
// change made on any node applies) and starts the run due since the last look, if no node claimed it.
func (r *Runner) Schedule(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := r.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		if err := r.fireDue(ctx, last, now); err != nil && !errors.Is(err, context.Canceled) {
			r.log.WarnContext(ctx, "scheduled garbage collection", "err", err)
		}
		last = now
	}
}

// fireDue starts the scheduled run due in (last, now], once across nodes.
func (r *Runner) fireDue(ctx context.Context, last, now time.Time) error {
	sc, err := r.store.GetGCSchedule(ctx)
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	fire := NextFire(sc.Cron, last)
	if fire.IsZero() || fire.After(now) {
		return nil
	}
	claimed, err := r.store.ClaimGCFire(ctx, fire)
	if err != nil || !claimed {
		return err
	}
	p, err := ParseParams(sc.Parameters)
	if err != nil {
		return err
	}
	_, err = r.Start(ctx, meta.GCKindSchedule, p)
	return err
}
