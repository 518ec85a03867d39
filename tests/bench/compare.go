package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Comparison is one figure measured on Berth and on its baseline in interleaved rounds.
type Comparison struct {
	Name   string
	Conns  int
	Berth  []LoadResult // one per round
	Base   []LoadResult
	Target string // what the issue asks, for the report ("" = none)
}

// Figure extracts one number from a trial.
type Figure func(LoadResult) float64

// Figures of a trial.
var (
	FigRPS        Figure = LoadResult.RPS
	FigThroughput Figure = LoadResult.Throughput
	FigP50        Figure = func(r LoadResult) float64 { return r.Pct(50).Seconds() }
	FigP99        Figure = func(r LoadResult) float64 { return r.Pct(99).Seconds() }
	FigCPUPerReq  Figure = LoadResult.ServerCPUPerRequest
)

// Median is the median of f over the Berth rounds and over the baseline rounds (the absolute figures
// the report shows; never divided by each other).
func (c Comparison) Median(f Figure) (berth, base float64) {
	return median(apply(c.Berth, f)), median(apply(c.Base, f))
}

// Ratio is the median of the per-round ratios Berth / baseline of f, with their range: each round's
// Berth and baseline trials ran back to back, so a round's ratio keeps the pairing that drift on a
// shared machine would otherwise break.
func (c Comparison) Ratio(f Figure) Ratios {
	return pairedRatios(apply(c.Berth, f), apply(c.Base, f))
}

// Ratios summarises per-round (or per-pair) ratios: their median and range. N is how many there are.
type Ratios struct {
	Med, Lo, Hi float64
	N           int
}

// String renders "med (rounds lo-hi)", or "-" when there is no ratio.
func (r Ratios) String() string {
	if r.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (rounds %.2f-%.2f)", r.Med, r.Lo, r.Hi)
}

// pairedRatios divides berth[i] by base[i] for every pair with a non-zero base and summarises them.
func pairedRatios(berth, base []float64) Ratios {
	var rs []float64
	for i := range min(len(berth), len(base)) {
		if base[i] != 0 {
			rs = append(rs, berth[i]/base[i])
		}
	}
	if len(rs) == 0 {
		return Ratios{}
	}
	return Ratios{Med: median(rs), Lo: slices.Min(rs), Hi: slices.Max(rs), N: len(rs)}
}

// Requests is the total of answered requests over all Berth rounds and all baseline rounds.
func (c Comparison) Requests() (berth, base int64) {
	for _, r := range c.Berth {
		berth += r.Requests
	}
	for _, r := range c.Base {
		base += r.Requests
	}
	return berth, base
}

func apply(rs []LoadResult, f Figure) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// errNothingAnswered is a trial in which no request was answered at all.
var errNothingAnswered = errors.New("nothing answered")

// Plan is how comparisons are run.
type Plan struct {
	Rounds      int
	Trial       time.Duration
	Warmup      time.Duration
	MaxRequests int64
	Progress    func(format string, args ...any)
}

// Compare warms both targets up (a short trial each, discarded), then runs plan.Rounds interleaved
// rounds, alternating which target goes first. A trial with any failed request is an error: figures of
// a server that fails are not figures.
func (p Plan) Compare(ctx context.Context, name string, berth, base Load, target string) (Comparison, error) {
	c := Comparison{Name: name, Conns: berth.Conns, Target: target}
	trial := func(l Load, d time.Duration) (LoadResult, error) {
		l.Duration, l.MaxRequests = d, p.MaxRequests
		r, err := RunLoad(ctx, l)
		if err != nil {
			return r, err
		}
		if r.Errors > 0 {
			return r, fmt.Errorf("%s: %d failed requests against %s, first: %w", name, r.Errors, l.URL, r.FirstErr)
		}
		if r.Requests == 0 && r.Bytes == 0 {
			return r, fmt.Errorf("%s: %w by %s in %s", name, errNothingAnswered, l.URL, d)
		}
		return r, nil
	}
	for _, l := range []Load{base, berth} {
		// A warm-up that got no answer in (a loaded machine can starve a short one) is no failure: it is
		// discarded anyway; a failed request is.
		if _, err := trial(l, p.Warmup); err != nil && !errors.Is(err, errNothingAnswered) {
			return c, fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range p.Rounds {
		order := []bool{i%2 == 0, i%2 != 0} // true = Berth
		for _, isBerth := range order {
			l := base
			if isBerth {
				l = berth
			}
			r, err := trial(l, p.Trial)
			if err != nil {
				return c, err
			}
			if isBerth {
				c.Berth = append(c.Berth, r)
			} else {
				c.Base = append(c.Base, r)
			}
		}
		if p.Progress != nil {
			b, s := c.Berth[len(c.Berth)-1], c.Base[len(c.Base)-1]
			p.Progress("  %s round %d/%d: berth %.0f req/s %s/s p99 %s | bare %.0f req/s %s/s p99 %s",
				name, i+1, p.Rounds, b.RPS(), MiB(b.Throughput()), b.Pct(99), s.RPS(), MiB(s.Throughput()), s.Pct(99))
		}
	}
	return c, nil
}

// MiB formats bytes in MiB.
func MiB(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
