package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// serveMetrics serves h at /metrics on its own listener at addr until ctx ends (metrics-addr), so that
// the operator can keep the metrics off the public listener. The listener has no authentication:
// operators bind it to a private address.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return serveAside(ctx, addr, srv, "metrics", "/metrics", log)
}
