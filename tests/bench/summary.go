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
	rows := r.coreRows()
	rows = append(rows, r.proxyRows()...)
	rows = append(rows, r.referrersRows()...)
	rows = append(rows, r.tokenRows()...)
	rows = append(rows, r.storageRows()...)
	rows = append(rows, r.gcRows()...)
	return append(rows, r.pullTimeRows()...)
}

// storageRows: warm blob GETs on S3 vs direct from S3 (target >= 0.8), with the S3 server on Berth's
// CPUs and with redirects (recorded).
func (r *Report) storageRows() []summaryRow {
	x := r.Storage
	if x == nil {
		return nil
	}
	var rows []summaryRow
	for _, c := range []Comparison{x.Warm, x.Shared, x.Redirect} {
		if len(c.Berth) == 0 {
			continue
		}
		b, s := c.Median(FigThroughput)
		rat := c.Ratio(FigThroughput)
		target, met := "-", "-"
		if c.Target != "" {
			target, met = c.Target, yesNo(rat.Med >= 0.8)
		}
		rows = append(rows, row(fmt.Sprintf("%s %s, %d connections", cap1(c.Name), MiB(float64(x.BlobSize)), c.Conns),
			MiB(b)+"/s", MiB(s)+"/s (direct from S3)", rat.String(), target, met))
	}
	return rows
}

// reqRows are a request-rate comparison's rows: req/s, then p50 and p99 (when asked) and the server's
// CPU per request as sub-rows, every ratio the median of the per-round ratios.
func reqRows(name, full string, c Comparison, target string, met func(Ratios) bool, p50 bool, p99Target float64) []summaryRow {
	b, s := c.Median(FigRPS)
	rat := c.Ratio(FigRPS)
	m := "-"
	if met != nil {
		m = yesNo(met(rat))
	}
	rows := []summaryRow{{name: name, berth: rps(b), base: rps(s), ratio: rat.String(), target: target, met: m, full: full}}
	if p50 {
		b, s = c.Median(FigP50)
		rows = append(rows, sub(summaryRow{name: "p50 latency (median of rounds)", berth: msf(b), base: msf(s), ratio: c.Ratio(FigP50).String(), target: "-", met: "-"}, ""))
	}
	b, s = c.Median(FigP99)
	p99 := summaryRow{name: "p99 latency (median of rounds)", berth: msf(b), base: msf(s), ratio: c.Ratio(FigP99).String(), target: "-", met: "-"}
	if p99Target > 0 {
		p99.target, p99.met = fmt.Sprintf("< %g ms", p99Target*1000), yesNo(b < p99Target)
	}
	rows = append(rows, sub(p99, cmpStr(full, name)+" p99"))
	b, s = c.Median(FigCPUPerReq)
	rows = append(rows, sub(summaryRow{name: "server CPU per request (median of rounds)", berth: usf(b), base: usf(s),
		ratio: c.Ratio(FigCPUPerReq).String(), target: "-", met: "-"}, ""))
	return rows
}

func (r *Report) coreRows() []summaryRow {
	var rows []summaryRow
	c := r.Core
	if c == nil {
		return nil
	}
	if len(c.Blob.Berth) > 0 {
		b, s := c.Blob.Median(FigThroughput)
		rows = append(rows, row(fmt.Sprintf("Blob GET %s, %d connections", MiB(float64(c.BlobSize)), c.Blob.Conns),
			MiB(b)+"/s", MiB(s)+"/s (same file, http.ServeContent)", c.Blob.Ratio(FigThroughput).String(), "-", "-"))
	}
	for _, m := range []Comparison{c.ManifestByDigest, c.ManifestByTag} {
		if len(m.Berth) > 0 {
			rows = append(rows, reqRows(fmt.Sprintf("%s (%d B), %d connections", cap1(m.Name), c.ManifestSize, m.Conns), m.Name, m, "-", nil, false, 0)...)
		}
	}
	// HEAD of the same paths (issue 9): target >= 0.8 of the bare server.
	for _, m := range []Comparison{c.ManifestHeadByDigest, c.ManifestHeadByTag} {
		if len(m.Berth) > 0 {
			rows = append(rows, reqRows(fmt.Sprintf("%s (%d B), %d connections", cap1(m.Name), c.ManifestSize, m.Conns), m.Name, m,
				">= 0.8", func(r Ratios) bool { return r.Med >= 0.8 }, false, 0)...)
		}
	}
	return rows
}

func (r *Report) proxyRows() []summaryRow {
	p := r.Proxy
	if p == nil {
		return nil
	}
	var rows []summaryRow
	if len(p.Through) > 0 && len(p.Direct) > 0 {
		rat := pullRatios(p.Direct, p.Through)
		rows = append(rows, row(fmt.Sprintf("Cold pull of a %s blob through a proxy project (median of %d)", MiB(float64(p.Size)), len(p.Through)),
			MiB(medianPull(p.Through))+"/s", MiB(medianPull(p.Direct))+"/s (direct from upstream)", rat.String(), ">= 0.8", yesNo(rat.Med >= 0.8)))
		var peak int64
		for _, t := range p.Through {
			peak = max(peak, t.Mem.Peak)
		}
		name := "Berth peak RSS during a single cold pull (worst round)"
		rows = append(rows, sub(summaryRow{name: name, berth: MiB(float64(peak)), base: "-", ratio: "-", target: "< 100 MiB", met: yesNo(peak < 100<<20)}, name))
	}
	for _, pr := range p.Paced {
		if len(pr.Through) == 0 || len(pr.Direct) == 0 {
			continue
		}
		rows = append(rows, sub(row(fmt.Sprintf("for context: upstream paced at %s/s (%s)", MiB(float64(pr.Rate)), gbit(pr.Rate)),
			MiB(medianPull(pr.Through))+"/s", MiB(medianPull(pr.Direct))+"/s (direct)", pullRatios(pr.Direct, pr.Through).String(), "-", "-"), ""))
	}
	if c := p.Conc; c.Pullers > 0 {
		x := float64(c.UpstreamBytes) / float64(p.Size)
		rows = append(rows, row(fmt.Sprintf("Upstream bytes for %d concurrent cold pullers", c.Pullers),
			fmt.Sprintf("%s = %.2fx the blob (%d GET)", MiB(float64(c.UpstreamBytes)), x, c.UpstreamGets), "-", "-", "1.0x",
			yesNo(c.UpstreamBytes == p.Size && c.Verified == c.Pullers)))
		name := fmt.Sprintf("Berth peak RSS during the %d pullers (VmHWM)", c.Pullers)
		rows = append(rows, sub(summaryRow{name: name, berth: MiB(float64(c.Mem.Peak)), base: "-", ratio: "-", target: "< 100 MiB",
			met: yesNo(c.Mem.Peak < 100<<20)}, name))
	}
	rows = append(rows, r.consoleSummary()...)
	rows = append(rows, r.hardeningRows()...)
	return rows
}

func (r *Report) referrersRows() []summaryRow {
	rr := r.Referrers
	if rr == nil {
		return nil
	}
	var rows []summaryRow
	atLeast := func(t float64) func(Ratios) bool { return func(x Ratios) bool { return x.Med >= t } }
	for _, v := range rr.Variants {
		if len(v.Hot.Berth) > 0 {
			name := fmt.Sprintf("Warm referrers GET, one hot subject (%s), %d connections", v.Name, v.Hot.Conns)
			rows = append(rows, reqRows(name, "", v.Hot, ">= 0.6", atLeast(0.6), true, 0.005)...)
		}
		if len(v.Many.Berth) > 0 {
			name := fmt.Sprintf("Warm referrers GET, %d subjects round-robin (%s), %d connections", rr.Subjects, v.Name, v.Many.Conns)
			rows = append(rows, reqRows(name, "", v.Many, "-", nil, false, 0)...)
		}
	}
	for _, v := range rr.Variants {
		if len(v.Cold.Berth) == 0 {
			continue
		}
		rows = append(rows, row(fmt.Sprintf("Cold referrers GET p50 (%s), %d subjects, all X-Cache MISS", v.Name, len(v.Cold.Berth)),
			ms(percentile(Sorted(v.Cold.Berth), 50)), ms(percentile(Sorted(v.Cold.Direct), 50))+" (direct from upstream)",
			strings.Replace(v.Cold.Ratio().String(), "rounds", "subjects", 1), "-", "-"))
	}
	return rows
}

func cap1(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// usf formats seconds in microseconds.
func usf(sec float64) string { return fmt.Sprintf("%.1f us", sec*1e6) }

// pullRatios are the per-round throughput ratios through / direct: their median and range.
func pullRatios(direct, through []Pull) Ratios {
	d, t := make([]float64, len(direct)), make([]float64, len(through))
	for i, p := range direct {
		d[i] = p.Throughput()
	}
	for i, p := range through {
		t[i] = p.Throughput()
	}
	return pairedRatios(t, d)
}

func medianPull(ps []Pull) float64 {
	v := make([]float64, len(ps))
	for i, p := range ps {
		v[i] = p.Throughput()
	}
	return median(v)
}
