package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLogger routes go-redis's own log lines (dial failures, pool notices) into Berth's structured
// log at debug level: a Redis outage is already reported once per failed call as a cache error.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
