// Package bench measures bin/berth against baselines on loopback and writes the figures, as ratios
// measured in the same run, to docs/performance.md. It is driven by the berthbench program
// (tests/bench/cmd/berthbench, run by scripts/bench.sh); nothing here is part of `make test` apart from
// the harness's own unit tests, which assert no timings.
//
// Every server under test is a separate process started by the run: bin/berth, and the baselines and
// upstreams (a bare net/http server serving bytes from memory, a generator upstream that streams
// deterministic blobs and counts the bytes it sends, go-containerregistry's registry with the referrers
// API), which are the berthbench binary re-executed in a child mode. The load generator is the only
// thing in the measuring process, so Berth and its baseline meet the same client on the same cores.
//
// Runs are bounded (a time cap per trial, a request cap, a global deadline), interleave Berth and its
// baseline round by round (alternating which goes first) so that drift on a shared machine hits both,
// and report medians with the spread across rounds. Children are stopped and temporary directories
// removed on every exit path; children also exit when the parent's stdin pipe closes or the parent dies.
package bench
