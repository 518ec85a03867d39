package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// consoleArtifacts is the repository size of the console scenario (issue 14: a page for a repository of
// 1,000 artifacts in < 200 ms p99).
const (
	consoleArtifacts = 1000
	consoleTarget    = 200 * time.Millisecond
)

// ConsoleResult is issue 14's figure: the console's artifacts page of a repository of Artifacts
// artifacts, its first page (the newest 100) and its last (the deepest OFFSET), one connection, no
// concurrency, so the latency measured on loopback is the server's time plus the loopback round trip.
type ConsoleResult struct {
	Artifacts int
	PageBytes int
	First     ConsolePage
	Last      ConsolePage
}

// ConsolePage is the latency distribution of one page.
type ConsolePage struct {
	Path               string
	Requests           int64
	P50, P90, P99, Max time.Duration
}

// RunConsole pushes Artifacts tagged images into a public project of a fresh Berth, then GETs the web
// console's repository page (anonymously) back to back.
func (r *Runner) RunConsole(ctx context.Context) (res ConsoleResult, err error) {
	b, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(b, &err)
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil { // public
		return res, err
	}
	r.progress("console: pushing %d artifacts", consoleArtifacts)
	for i := range consoleArtifacts {
		layer, err := b.PushBytes(ctx, "bench/app", []byte(fmt.Sprintf("layer %d", i)))
		if err != nil {
			return res, fmt.Errorf("push layer %d: %w", i, err)
		}
		if _, _, err := b.PushImage(ctx, "bench/app", fmt.Sprintf("v%d", i), layer); err != nil {
			return res, fmt.Errorf("push image %d: %w", i, err)
		}
	}
	res.Artifacts = consoleArtifacts
	lastPage := (consoleArtifacts + 99) / 100
	for _, pg := range []struct {
		out  *ConsolePage
		page int
	}{{&res.First, 1}, {&res.Last, lastPage}} {
		path := fmt.Sprintf("/projects/bench/repository?name=app&page=%d", pg.page)
		status, _, body, err := b.Get(ctx, b.URL+path, nil)
		if err != nil {
			return res, fmt.Errorf("GET %s: %w", path, err)
		}
		if status != http.StatusOK {
			return res, fmt.Errorf("GET %s: status %d", path, status)
		}
		if n := strings.Count(string(body), "<tr>") - 1; n != 100 {
			return res, fmt.Errorf("GET %s lists %d artifacts, want 100", path, n)
		}
		res.PageBytes = len(body)
		r.progress("console: GET %s, 1 connection", path)
		lr, err := RunLoad(ctx, Load{URL: b.URL + path, Conns: 1, Duration: r.Cfg.Trial * time.Duration(r.Cfg.Rounds),
			MaxRequests: r.Cfg.MaxRequests, WantBytes: -1})
		if err != nil {
			return res, err
		}
		if lr.Errors > 0 || lr.Requests == 0 {
			return res, fmt.Errorf("GET %s: %d errors, %d answers: %w", path, lr.Errors, lr.Requests, lr.FirstErr)
		}
		*pg.out = ConsolePage{Path: path, Requests: lr.Requests, P50: lr.Pct(50), P90: lr.Pct(90), P99: lr.Pct(99), Max: lr.Lat[len(lr.Lat)-1]}
	}
	return res, nil
}

// consoleDetail writes the console section of the report.
func (r *Report) consoleDetail(p printer) {
	x := r.Console
	if x == nil || x.First.Requests == 0 {
		return
	}
	p("### Web console artifacts page (issue 14)\n\n")
	p("A repository of %d artifacts (tagged images); the console lists 100 per page (%d B of HTML), newest push first, with tags.\n", x.Artifacts, x.PageBytes)
	p("One connection, requests back to back, anonymous (public project); latency measured by the client on loopback.\n\n")
	p("| Page | Requests | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, pg := range []ConsolePage{x.First, x.Last} {
		p("| `%s` | %d | %s | %s | %s | %s |\n", pg.Path, pg.Requests, ms(pg.P50), ms(pg.P90), ms(pg.P99), ms(pg.Max))
	}
	p("\n")
}

// consoleSummary is the console's row of the summary table.
func (r *Report) consoleSummary() []summaryRow {
	x := r.Console
	if x == nil || x.First.Requests == 0 {
		return nil
	}
	worst := max(x.First.P99, x.Last.P99)
	return []summaryRow{row(fmt.Sprintf("Console artifacts page, %d artifacts, p99 (worst page)", x.Artifacts),
		ms(worst), "-", "-", "< "+ms(consoleTarget), yesNo(worst < consoleTarget))}
}
