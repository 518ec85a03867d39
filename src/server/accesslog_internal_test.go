package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slogLine is the reference: what slog's handler writes for the same record.
func slogLine(t testing.TB, json bool, at time.Time, r request) string {
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if json {
		h = slog.NewJSONHandler(&buf, nil)
	}
	rec := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	rec.AddAttrs(slog.String("method", r.method), slog.String("path", r.path), slog.Int("status", r.status),
		slog.Int64("bytes", r.bytes), slog.Duration("duration", r.duration), slog.String("remote", r.remote))
	require.NoError(t, h.Handle(context.Background(), rec))
	return buf.String()
}

func TestAccessLineMatchesSlog(t *testing.T) {
	utc := time.Date(2026, 11, 27, 9, 6, 34, 372_000_000, time.UTC)
	tests := []struct {
		name string
		at   time.Time
		r    request
	}{
		{"referrers", utc, request{"GET", "/v2/p/app/referrers/sha256:0123456789abcdef", "127.0.0.1:46474", 200, 1720, 433904 * time.Nanosecond}},
		{"whole milliseconds, zero bytes", utc.Add(-372 * time.Millisecond), request{"HEAD", "/v2/", "[::1]:5000", 401, 0, 2 * time.Millisecond}},
		{"sub-millisecond fraction", utc.Add(999_999), request{"PUT", "/v2/a/b/blobs/uploads/x", "10.0.0.1:1", 201, 1 << 40, time.Minute + 7*time.Nanosecond}},
		{"local zone", utc.In(time.FixedZone("x", -5*3600+1800)), request{"DELETE", "/api/v2.0/projects/p", "1.2.3.4:5", 500, -1, 0}},
		{"monotonic clock reading", time.Now(), request{"GET", "/metrics", "1.2.3.4:5", 200, 10, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.True(t, plain(tt.r.method) && plain(tt.r.path) && plain(tt.r.remote), "the formatters take plain strings only")
			require.Equal(t, slogLine(t, false, tt.at, tt.r), string(appendTextLine(nil, tt.at, tt.r)))
			require.Equal(t, slogLine(t, true, tt.at, tt.r), string(appendJSONLine(nil, tt.at, tt.r)))
		})
	}
}

// FuzzAccessLine: for any plain strings, numbers and time, the formatted line is slog's.
func FuzzAccessLine(f *testing.F) {
	f.Add("GET", "/v2/", "127.0.0.1:1", 200, int64(5), int64(433904), int64(1_764_000_000_123_456_789))
	f.Add("PATCH", "/v2/a/b/blobs/uploads/1", "[::1]:9", 202, int64(-3), int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, method, path, remote string, status int, n, d, unixNano int64) {
		r := request{method: method, path: path, remote: remote, status: status, bytes: n, duration: time.Duration(d)}
		if !plain(method) || !plain(path) || !plain(remote) {
			t.Skip("not plain: written through slog")
		}
		at := time.Unix(0, unixNano).UTC()
		if y := at.Year(); y < 0 || y >= 10000 {
			t.Skip("slog reports years outside 0-9999 as errors")
		}
		require.Equal(t, slogLine(t, false, at, r), string(appendTextLine(nil, at, r)))
		require.Equal(t, slogLine(t, true, at, r), string(appendJSONLine(nil, at, r)))
	})
}

func TestPlain(t *testing.T) {
	for s, want := range map[string]bool{
		"/v2/a/b": true, "127.0.0.1:5": true, "GET": true, "": false, "a b": false, "a=b": false,
		`a"b`: false, `a\b`: false, "a\nb": false, "é": false, "\x7f": false, "~!@#$%^&*()_+{}|:<>?": true,
	} {
		require.Equal(t, want, plain(s), "%q", s)
	}
}

// Lines whose strings are not plain go through slog, which quotes them; levels above info log nothing.
func TestAccessLogWrite(t *testing.T) {
	ctx := context.Background()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			log := slog.New(slog.NewTextHandler(&out, nil))
			if format == "json" {
				log = slog.New(slog.NewJSONHandler(&out, nil))
			}
			a := &accessLog{log: log}
			WithAccessLogWriter(&out, format)(&options{log: a})
			require.NotNil(t, a.out)
			at := time.Now()
			fast := request{"GET", "/v2/", "1.2.3.4:5", 200, 3, time.Millisecond}
			a.write(ctx, at, fast)
			require.Equal(t, slogLine(t, format == "json", at, fast), out.String())

			out.Reset()
			odd := request{"GET", "/v2/a b=\"c\"", "1.2.3.4:5", 404, 3, time.Millisecond}
			a.write(ctx, at, odd)
			line := out.String()
			if format == "text" {
				require.Contains(t, line, `path="/v2/a b=\"c\""`)
			} else {
				require.Contains(t, line, `"path":"/v2/a b=\"c\""`)
			}
			require.Equal(t, 1, strings.Count(line, "\n"))

			out.Reset()
			quiet := &accessLog{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			WithAccessLogWriter(&out, format)(&options{log: quiet})
			quiet.write(ctx, at, fast)
			require.Empty(t, out.String())
		})
	}
}
