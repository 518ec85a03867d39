package bench

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Markdown renders the report as the generated section of docs/performance.md.
func (r *Report) Markdown() string {
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	m := r.Machine
	p("## Latest run\n\n")
	p("- Date: %s (UTC), %s long\n", r.Start.Format("2006-01-02 15:04"), r.End.Sub(r.Start).Round(time.Second))
	p("- Machine: %d CPUs (nproc), %s; %s\n", m.NumCPU, m.CPU, m.GoVersion)
	p("- Kernel (uname): `%s`; filesystem of the temporary directory, which holds Berth's data and the bare server's files (statfs): %s\n",
		m.Kernel, cmpStr(m.FS, "?"))
	p("- Berth: `%s`\n", cmpStr(m.BerthVersion, "?"))
	if m.ServerCPUs != "" {
		p("- CPUs: for the request-rate figures the clients run on CPU %s and the servers (Berth, the bare server, the upstream) on CPU %s,\n", cmpStr(m.ClientCPUs, "0"), m.ServerCPUs)
		p("  so that clients and servers do not take turns on the same cores; the cold pulls run unpinned.\n")
	} else {
		p("- CPUs: not pinned; clients and servers share every CPU.\n")
	}
	p("- Load average (1/5/15 min) before: %s, after: %s. The machine is shared; ratios are more stable than absolute figures.\n", m.LoadBefore, m.LoadAfter)
	if r.Core != nil || r.Referrers != nil {
		p("- Request rates: %d interleaved rounds of %s per target and figure (after a %s warm-up each), alternating which goes first;\n",
			r.Cfg.Rounds, r.Cfg.Trial, r.Cfg.Warmup)
		p("  absolute figures are each side's median over the rounds; every ratio is the median of the per-round ratios, with their range.\n")
	}
	if r.Proxy != nil {
		p("- Cold pulls: %d rounds per target, alternating which goes first; medians shown, ratios per round as above.\n", r.Cfg.ProxyRounds)
	}
	p("\n")
	if len(r.Errors) > 0 {
		p("**The run had failures; the figures below are incomplete:**\n\n")
		for _, e := range r.Errors {
			p("- %s\n", e)
		}
		p("\n")
	}
	p("### Summary\n\n")
	p("Ratio = Berth / baseline, the median of the per-round ratios (per-pair for cold pulls and cold referrers) with their range in\n")
	p("brackets: above 1 is better for throughput and req/s, below 1 is better for latency and CPU per request.\n\n")
	p("| Figure | Berth | Baseline | Ratio | Target | Met |\n|---|---|---|---|---|---|\n")
	for _, row := range r.summary() {
		p("| %s | %s | %s | %s | %s | %s |\n", row.name, row.berth, row.base, row.ratio, row.target, row.met)
	}
	p("\n")
	r.coreDetail(p)
	r.proxyDetail(p)
	r.referrersDetail(p)
	r.mirrorDetail(p)
	r.consoleDetail(p)
	r.storageDetail(p)
	r.retentionDetail(p)
	return w.String()
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type printer func(format string, args ...any)

func roundsTable(p printer, c Comparison, fig Figure, unit func(float64) string) {
	p("| Round | Berth | Bare | Ratio | Berth p50 / p99 | Bare p50 / p99 | Server CPU per request, Berth / bare | Client CPU busy |\n|---|---|---|---|---|---|---|---|\n")
	for i := range min(len(c.Berth), len(c.Base)) {
		b, s := c.Berth[i], c.Base[i]
		p("| %d | %s | %s | %.2f | %s / %s | %s / %s | %s / %s | %.0f%% / %.0f%% |\n", i+1, unit(fig(b)), unit(fig(s)), fig(b)/fig(s),
			ms(b.Pct(50)), ms(b.Pct(99)), ms(s.Pct(50)), ms(s.Pct(99)), usf(b.ServerCPUPerRequest()), usf(s.ServerCPUPerRequest()),
			100*b.ClientBusy(), 100*s.ClientBusy())
	}
	bt, st := c.Requests()
	p("\nMedian of the per-round ratios: %s. %d requests to Berth, %d to the bare server, none failed.", c.Ratio(fig), bt, st)
	if sampled := sampledCounts(c.Berth); sampled != "" {
		p(" X-Cache of every %dth answer per connection during Berth's trials: %s.", warmSampleEvery, sampled)
	}
	p("\n\n")
}

// sampledCounts sums the sampled header values of rs.
func sampledCounts(rs []LoadResult) string {
	m := map[string]int{}
	for _, r := range rs {
		for k, n := range r.Sampled {
			m[k] += n
		}
	}
	return cacheCounts(m)
}

func rps(v float64) string   { return fmt.Sprintf("%.0f req/s", v) }
func mibps(v float64) string { return MiB(v) + "/s" }

func (r *Report) coreDetail(p printer) {
	c := r.Core
	if c == nil || len(c.Blob.Berth) == 0 {
		return
	}
	p("### Registry core (issue 2)\n\n")
	p("A fresh Berth (SQLite, filesystem storage in a temporary directory, info logging to a file) holds a %s blob and an\n", MiB(float64(c.BlobSize)))
	p("OCI image manifest (%d B) in a public project; a bare `net/http` server (a separate process) answers the same paths with the same\n", c.ManifestSize)
	p("bytes and headers (Content-Type, Content-Length, Docker-Content-Digest). The blob the way Berth sends it: a file with the same bytes\n")
	p("in the same temporary directory (%s), opened per request and sent with `http.ServeContent` over the `*os.File`, i.e. sendfile;\n", cmpStr(r.Machine.FS, "same filesystem"))
	p("the manifest from memory. Both were checked to serve bytes with the same digest before measuring. Clients: one goroutine per\n")
	p("keep-alive connection, closed loop, GET and read the whole body; anonymous pulls. The manifest HEAD rows send HEAD to the\n")
	p("same paths and check each answer's Content-Length instead of a body.\n\n")
	p("**Blob GET, %d connections**\n\n", c.Blob.Conns)
	roundsTable(p, c.Blob, FigThroughput, mibps)
	for _, m := range []Comparison{c.ManifestByDigest, c.ManifestByTag, c.ManifestHeadByDigest, c.ManifestHeadByTag} {
		if len(m.Berth) == 0 {
			continue
		}
		p("**%s, %d connections**\n\n", cap1(m.Name), m.Conns)
		roundsTable(p, m, FigRPS, rps)
	}
}

func (r *Report) proxyDetail(p printer) {
	x := r.Proxy
	if x == nil || (len(x.Through) == 0 && x.Conc.Pullers == 0) {
		return
	}
	p("### Proxy cache, cold pulls (issue 3)\n\n")
	p("The upstream is a minimal registry (a separate process) that generates each %s blob from a seed while it streams it and counts the\n", MiB(float64(x.Size)))
	p("bytes it sends; neither it nor the measuring process holds a blob in memory. Every round pulls a different blob: directly from the\n")
	p("upstream, and through a proxy-cache project of a Berth started for that round (cold: empty data directory), each on a new connection;\n")
	p("the client hashes what it receives (sha256 on a goroutine beside the reads) and checks it against the digest, in both cases.\n")
	p("Berth's peak RSS is VmHWM from /proc/<pid>/status, reset (clear_refs) once the project exists, so it covers the pull only.\n")
	if r.Machine.SHA256 > 0 {
		p("For scale: sha256 runs at %s/s on one core of this machine, so verifying the blob alone takes %s; a proxy that verifies\n",
			MiB(r.Machine.SHA256), (time.Duration(float64(x.Size) / r.Machine.SHA256 * float64(time.Second))).Round(time.Millisecond))
		p("before it releases the last byte cannot finish a cold pull sooner, whatever the direct pull takes. (Berth holds the last byte\n")
		p("back until the digest matched; it makes the blob durable and links it after that, off the client's path.)\n")
	}
	p("\n")
	pullTable(p, x.Direct, x.Through)
	p("\n")
	if c := x.Conc; c.Pullers > 0 {
		p("**%d concurrent cold pullers** of one blob through a fresh Berth, released together, each hashing what it receives:\n", c.Pullers)
		p("all done in %s (fastest %s; %s/s aggregate), %d of %d received the right digest; the upstream served %s (%.2fx the blob) in %d blob GETs\n",
			c.Elapsed.Round(time.Millisecond), c.Fastest.Round(time.Millisecond), MiB(float64(x.Size)*float64(c.Pullers)/c.Elapsed.Seconds()),
			c.Verified, c.Pullers, MiB(float64(c.UpstreamBytes)), float64(c.UpstreamBytes)/float64(x.Size), c.UpstreamGets)
		p("(upstream requests in all: %d); Berth's RSS was %s idle and peaked at %s.\n\n", c.UpstreamReqs, MiB(float64(c.Mem.RSS)), MiB(float64(c.Mem.Peak)))
	}
	for _, pr := range x.Paced {
		if len(pr.Through) == 0 {
			continue
		}
		p("**For context, not the issue's figure:** the same rounds with the upstream pacing each GET to %s/s (%s), as a LAN or\n",
			MiB(float64(pr.Rate)), gbit(pr.Rate))
		p("WAN upstream would, so that the upstream rather than the loopback bounds the pull.\n\n")
		pullTable(p, pr.Direct, pr.Through)
		p("\n")
	}
}

// pullTable lists cold pull rounds.
func pullTable(p printer, direct, through []Pull) {
	p("| Round | Direct | Through Berth | Ratio | Through Berth: all but the last byte | Upstream bytes (through Berth) | Berth RSS idle / peak | Berth CPU | Machine CPU busy, direct / through |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := range min(len(direct), len(through)) {
		d, t := direct[i], through[i]
		p("| %d | %s/s (%s) | %s/s (%s) | %.2f | %s | %s in %d GET | %s / %s | %s | %s / %s |\n", i+1, MiB(d.Throughput()), d.Elapsed.Round(time.Millisecond),
			MiB(t.Throughput()), t.Elapsed.Round(time.Millisecond), t.Throughput()/d.Throughput(), t.AllButLast.Round(time.Millisecond),
			MiB(float64(t.UpstreamBytes)), t.UpstreamGets, MiB(float64(t.Mem.RSS)), MiB(float64(t.Mem.Peak)), t.CPU.Round(10*time.Millisecond),
			busyPct(d.Busy), busyPct(t.Busy))
	}
}

func (r *Report) referrersDetail(p printer) {
	x := r.Referrers
	if x == nil || len(x.Variants) == 0 {
		return
	}
	p("### Proxy Referrer API (issue 4)\n\n")
	p("Upstream: go-containerregistry's registry with the referrers API (a separate process). Subjects with %d referrers each (the hot\n", x.Referrers)
	p("subject's index is %d B) are read through a proxy-cache project with `proxy_referrer_api` on; the bare server answers the same paths\n", x.IndexSize)
	p("with the exact bytes Berth returned. Warm: the project's freshness window (`proxy_referrer_cache_seconds`) is set to %s s, longer\n", warmFreshness)
	p("than the run, so every warm answer is a cache HIT; every %dth answer of each Berth connection is checked to carry `X-Cache: HIT`\n", warmSampleEvery)
	p("(a trial fails otherwise). Local referrers are merged at read time, as in production. *One hot subject*: every connection asks for\n")
	p("the same subject; with Redis and the node cache on (`referrers-node-cache` 1s) this measures the node cache, which reads Redis once\n")
	p("per key and second. *%d subjects round-robin*: each connection cycles through %d subjects from its own offset. *Node cache off*\n", x.Subjects, x.Subjects)
	p("(`referrers-node-cache 0s`): every request reads Redis. Cold: subjects Berth was never asked about, one request each, interleaved\n")
	p("with the same request straight to the upstream, both on warm keep-alive connections; every Berth answer must be `X-Cache: MISS`\n")
	p("(the run fails otherwise). Each Redis variant writes under a key prefix of its own (`--redis-key-prefix`), checked empty before\n")
	p("and removed after, so no run reads another's entries.\n\n")
	for _, v := range x.Variants {
		for _, c := range []Comparison{v.Hot, v.Many} {
			if len(c.Berth) == 0 {
				continue
			}
			p("**%s, %d connections** (the upstream saw %d referrers requests during this variant's warm trials)\n\n", cap1(c.Name), c.Conns, v.UpstreamDuringWarm)
			roundsTable(p, c, FigRPS, rps)
		}
		if len(v.Cold.Berth) > 0 {
			b, d := Sorted(v.Cold.Berth), Sorted(v.Cold.Direct)
			p("**Cold, %s**: %d subjects. First referrers request of a fresh Berth (upstream connection, capability probe): %s.\n\n", v.Name, len(v.Cold.Berth), ms(v.First))
			p("| | p50 | p90 | max |\n|---|---|---|---|\n")
			p("| Through Berth (X-Cache %s) | %s | %s | %s |\n", cacheCounts(v.Cold.Cache), ms(percentile(b, 50)), ms(percentile(b, 90)), ms(b[len(b)-1]))
			p("| Direct from upstream | %s | %s | %s |\n\n", ms(percentile(d, 50)), ms(percentile(d, 90)), ms(d[len(d)-1]))
			p("Median of the per-subject ratios Berth / direct: %s.\n\n", strings.Replace(v.Cold.Ratio().String(), "rounds", "subjects", 1))
		}
	}
	if x.RedisSkip != "" {
		p("Redis variants skipped: %s.\n\n", x.RedisSkip)
	}
	if d := x.DiskLayer; len(d.Berth) > 0 {
		p("**Warm, embedded default with its persistent layer (Berth column) vs memory only (`--referrers-disk-cache-max-bytes 0`, Bare column), %d connections**: ratio %s (target %s)\n\n",
			d.Conns, d.Ratio(FigRPS), d.Target)
		roundsTable(p, d, FigRPS, rps)
	}
}

func cacheCounts(m map[string]int) string {
	var parts []string
	for _, k := range []string{"MISS", "HIT", "STALE", "LOCAL", ""} {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", cmpStr(k, "none"), n))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Report) storageDetail(p printer) {
	x := r.Storage
	if x == nil || len(x.Warm.Berth) == 0 {
		return
	}
	p("### Storage on S3 (issue 13)\n\n")
	p("The S3 server is versitygw v1.8.0 with its posix backend (a separate process, data in the temporary directory). A fresh Berth with\n")
	p("`storage_url: s3://bench/warm` holds a %s blob; the baseline GETs the same object from versitygw directly with a presigned URL\n", MiB(float64(x.BlobSize)))
	p("(signature checked per request, as for Berth's own GETs). Berth sends one GET to S3 per blob GET and splices its body into the\n")
	p("client's connection (socket to socket in the kernel; see \"Where the time goes\").\n\n")
	if len(x.Shared.Berth) > 0 {
		p("CPUs: the S3 server runs on the load generator's CPU. It stands for an object store on machines of its own, so the\n")
		p("direct GET and the GET through Berth share one CPU for the client and the S3 server alike, and Berth, the hop being\n")
		p("measured, gets the server CPU as in every other scenario. The second table moves the S3 server onto Berth's CPU instead\n")
		p("(both servers on one core, as on a single machine running both), for context.\n\n")
	}
	p("**Blob GET through Berth on S3 vs direct from S3, %d connections**\n\n", x.Warm.Conns)
	roundsTable(p, x.Warm, FigThroughput, mibps)
	if len(x.Shared.Berth) > 0 {
		p("**The same with the S3 server on Berth's CPU** (for context):\n\n")
		roundsTable(p, x.Shared, FigThroughput, mibps)
	}
	if len(x.Redirect.Berth) > 0 {
		p("**The same with `storage_redirect: true`** (Berth answers 307 to a presigned URL; the client follows it, keeping a connection to each):\n\n")
		roundsTable(p, x.Redirect, FigThroughput, mibps)
	}
	if n := min(len(x.ColdFS), len(x.ColdS3)); n > 0 {
		p("**Cold pull-through onto S3 vs onto the filesystem** (%s blob from the generator upstream, fresh Berth per pull; Berth uploads\n", MiB(float64(r.Cfg.ProxyBlobSize)))
		p("the verified blob to S3 after the client has it, so this shows the cost on the client's path only):\n\n")
		p("| Round | Filesystem | S3 | Ratio (S3 / filesystem) | Berth RSS peak (FS / S3) |\n|---|---|---|---|---|\n")
		for i := range n {
			f, s := x.ColdFS[i], x.ColdS3[i]
			p("| %d | %s/s (%s) | %s/s (%s) | %.2f | %s / %s |\n", i+1, MiB(f.Throughput()), f.Elapsed.Round(time.Millisecond),
				MiB(s.Throughput()), s.Elapsed.Round(time.Millisecond), s.Throughput()/f.Throughput(), MiB(float64(f.Mem.Peak)), MiB(float64(s.Mem.Peak)))
		}
		p("\n")
	}
}

// busyPct is a Pull's machine-wide busy share as a percentage of all CPUs ("-" when not measured).
func busyPct(b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*b)
}
