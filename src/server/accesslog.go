package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// accessLog writes the one line per request. Through slog in general; with a fast writer (see
// WithAccessLogWriter) the line is formatted here, byte for byte as slog's TextHandler or JSONHandler
// would write it, whenever its strings need no quoting or escaping (the common case): the generic path
// costs several percent of a warm referrers request.
type accessLog struct {
	log  *slog.Logger
	out  io.Writer // nil: always through slog
	json bool
	bufs sync.Pool // *[]byte

}

// request is what one access log line says.
type request struct {
	method, path, remote string
	status               int
	bytes                int64
	duration             time.Duration
}

func (a *accessLog) write(ctx context.Context, t time.Time, r request) {
	if !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if a.out == nil || !plain(r.method) || !plain(r.path) || !plain(r.remote) {
		a.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", r.method), slog.String("path", r.path), slog.Int("status", r.status),
			slog.Int64("bytes", r.bytes), slog.Duration("duration", r.duration), slog.String("remote", r.remote))
		return
	}
	bp, _ := a.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := (*bp)[:0]
	if a.json {
		b = appendJSONLine(b, t, r)
	} else {
		b = appendTextLine(b, t, r)
	}
	_, _ = a.out.Write(b) // as slog: a failed log write does not fail the request
	if cap(b) <= 4<<10 {
		*bp = b
		a.bufs.Put(bp)
	}
}

// appendTextLine is slog's TextHandler output for the record, for plain strings.
func appendTextLine(b []byte, t time.Time, r request) []byte {
	b = append(b, "time="...)
	b = appendRFC3339Millis(b, t.Round(0))
	b = append(b, " level=INFO msg=request method="...)
	b = append(b, r.method...)
	b = append(b, " path="...)
	b = append(b, r.path...)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, " duration="...)
	b = append(b, r.duration.String()...)
	b = append(b, " remote="...)
	b = append(b, r.remote...)
	return append(b, '\n')
}

// appendJSONLine is slog's JSONHandler output for the record, for plain strings.
func appendJSONLine(b []byte, t time.Time, r request) []byte {
	b = append(b, `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":"`...)
	b = append(b, r.method...)
	b = append(b, `","path":"`...)
	b = append(b, r.path...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(r.duration), 10)
	b = append(b, `,"remote":"`...)
	b = append(b, r.remote...)
	return append(b, "\"}\n"...)
}

// appendRFC3339Millis formats t as slog's TextHandler does: RFC 3339 with exactly three fraction digits.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10) // keeps 4 fraction digits; drop the last
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// plain reports whether s is written as it is by both slog handlers: not empty, printable ASCII
// without space, '=', '"' or '\'.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '=' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
