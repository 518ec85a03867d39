package bench

import (
	"fmt"
	"strings"
	"time"
)

// summaryRow is one line of the summary table.
type summaryRow struct {
	name, berth, base, ratio, target, met string
	full                                  string // the name outside the table ("" = name)
}

func row(name, berth, base, ratio, target, met string) summaryRow {
	return summaryRow{name: name, berth: berth, base: base, ratio: ratio, target: target, met: met}
}

// sub makes row an indented sub-row of the one above, named full outside the table.
func sub(row summaryRow, full string) summaryRow {
	row.full = full
	row.name = "&nbsp;&nbsp;" + row.name
	return row
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// gbit formats a rate in bytes/s as Gbit/s.
func gbit(rate int64) string { return fmt.Sprintf("%g Gbit/s", float64(rate)*8/1e9) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func msf(sec float64) string { return fmt.Sprintf("%.2f ms", sec*1000) }

func (r *Report) summary() []summaryRow {
	var rows []summaryRow
	if c := r.Core; c != nil && len(c.Blob.Berth) > 0 {
		b, s := c.Blob.Median(FigThroughput)
		rows = append(rows, row(fmt.Sprintf("Blob GET %s, %d connections", MiB(float64(c.BlobSize)), c.Blob.Conns),
			MiB(b)+"/s", MiB(s)+"/s", ratio(c.Blob, FigThroughput), "-", "-"))
	}
	if c := r.Core; c != nil {
		for _, m := range []Comparison{c.ManifestByDigest, c.ManifestByTag} {
			if len(m.Berth) == 0 {
				continue
			}
			b, s := m.Median(FigRPS)
			rows = append(rows, row(fmt.Sprintf("%s (%d B), %d connections", cap1(m.Name), c.ManifestSize, m.Conns),
				fmt.Sprintf("%.0f req/s", b), fmt.Sprintf("%.0f req/s", s), ratio(m, FigRPS), "-", "-"))
			b, s = m.Median(FigP99)
			rows = append(rows, sub(summaryRow{name: "p99 latency", berth: msf(b), base: msf(s), ratio: "-", target: "-", met: "-"}, m.Name+" p99"))
		}
	}
	if p := r.Proxy; p != nil && len(p.Through) > 0 && len(p.Direct) > 0 {
		b, s := medianPull(p.Through), medianPull(p.Direct)
		rat := b / s
		lo, hi := pullRatios(p.Direct, p.Through)
		rows = append(rows, row(fmt.Sprintf("Cold pull of a %s blob through a proxy project (median of %d)", MiB(float64(p.Size)), len(p.Through)),
			MiB(b)+"/s", MiB(s)+"/s (direct from upstream)", fmt.Sprintf("%.2f (rounds %.2f-%.2f)", rat, lo, hi), ">= 0.8", yesNo(rat >= 0.8)))
		var peak int64
		for _, t := range p.Through {
			peak = max(peak, t.Mem.Peak)
		}
		name := "Berth peak RSS during a single cold pull (worst round)"
		rows = append(rows, sub(summaryRow{name: name, berth: MiB(float64(peak)), base: "-", ratio: "-", target: "< 100 MiB", met: yesNo(peak < 100<<20)}, name))
	}
	if p := r.Proxy; p != nil {
		for _, pr := range p.Paced {
			if len(pr.Through) == 0 || len(pr.Direct) == 0 {
				continue
			}
			b, s := medianPull(pr.Through), medianPull(pr.Direct)
			rows = append(rows, sub(row(fmt.Sprintf("for context: upstream paced at %s/s (%s)", MiB(float64(pr.Rate)), gbit(pr.Rate)), MiB(b)+"/s", MiB(s)+"/s (direct)",
				fmt.Sprintf("%.2f", b/s), "-", "-"), ""))
		}
	}
	if p := r.Proxy; p != nil && p.Conc.Pullers > 0 {
		c := p.Conc
		x := float64(c.UpstreamBytes) / float64(p.Size)
		rows = append(rows, row(fmt.Sprintf("Upstream bytes for %d concurrent cold pullers", c.Pullers),
			fmt.Sprintf("%s = %.2fx the blob (%d GET)", MiB(float64(c.UpstreamBytes)), x, c.UpstreamGets), "-", "-", "1.0x",
			yesNo(c.UpstreamBytes == p.Size && c.Verified == c.Pullers)))
		name := fmt.Sprintf("Berth peak RSS during the %d pullers (VmHWM)", c.Pullers)
		rows = append(rows, sub(summaryRow{name: name, berth: MiB(float64(c.Mem.Peak)), base: "-", ratio: "-", target: "< 100 MiB",
			met: yesNo(c.Mem.Peak < 100<<20)}, name))
	}
	if rr := r.Referrers; rr != nil {
		for _, v := range []*ReferrersVariant{&rr.Memory, rr.Redis} {
			if v == nil || len(v.Warm.Berth) == 0 {
				continue
			}
			b, s := v.Warm.Median(FigRPS)
			rat := v.Warm.Ratio(FigRPS)
			rows = append(rows, row(fmt.Sprintf("Warm referrers GET (%s), %d connections", v.Name, v.Warm.Conns),
				fmt.Sprintf("%.0f req/s", b), fmt.Sprintf("%.0f req/s", s), fmt.Sprintf("%.2f", rat), ">= 0.6", yesNo(rat >= 0.6)))
			b, s = v.Warm.Median(FigP50)
			rows = append(rows, sub(summaryRow{name: "p50 latency", berth: msf(b), base: msf(s), ratio: fmt.Sprintf("%.2f", b/s), target: "-", met: "-"}, ""))
			b, s = v.Warm.Median(FigP99)
			name := "p99 latency (median of rounds)"
			rows = append(rows, sub(summaryRow{name: name, berth: msf(b), base: msf(s), ratio: fmt.Sprintf("%.2f", b/s), target: "< 5 ms",
				met: yesNo(b < 0.005)}, "Warm referrers "+name+" ("+v.Name+")"))
		}
		for _, v := range []*ReferrersVariant{&rr.Memory, rr.Redis} {
			if v == nil || len(v.Cold.Berth) == 0 {
				continue
			}
			b, s := percentile(v.Cold.Berth, 50), percentile(v.Cold.Direct, 50)
			rows = append(rows, row(fmt.Sprintf("Cold referrers GET p50 (%s), %d subjects", v.Name, len(v.Cold.Berth)),
				ms(b), ms(s)+" (direct from upstream)", fmt.Sprintf("%.2f", float64(b)/float64(s)), "-", "-"))
		}
	}
	rows = append(rows, r.hardeningRows()...)
	return rows
}

func ratio(c Comparison, f Figure) string {
	lo, hi := c.RoundRatios(f)
	return fmt.Sprintf("%.2f (rounds %.2f-%.2f)", c.Ratio(f), lo, hi)
}

func cap1(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pullRatios is the range of the per-round throughput ratios through / direct.
func pullRatios(direct, through []Pull) (lo, hi float64) {
	for i := range min(len(direct), len(through)) {
		v := through[i].Throughput() / direct[i].Throughput()
		if i == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return lo, hi
}

func medianPull(ps []Pull) float64 {
	v := make([]float64, len(ps))
	for i, p := range ps {
		v[i] = p.Throughput()
	}
	return median(v)
}
