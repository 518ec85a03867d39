package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves the Go runtime profiles (/debug/pprof/) on their own listener at addr until ctx ends.
// The handlers are registered on a private mux, never on http.DefaultServeMux, so the main listener does
// not expose them. The listener has no authentication: operators bind it to a private address.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveAside(ctx, addr, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, "debug", "/debug/pprof/", log)
}

// serveAside serves srv on a listener of its own at addr until ctx ends: the side listeners (debug,
// metrics) beside the main one. name and path say in the log what it serves; an error is returned only
// when addr cannot be bound, a later failure is logged.
func serveAside(ctx context.Context, addr string, srv *http.Server, name, path string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info(name+" listener serving "+path, "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn(name+" listener stopped", "err", err)
		}
	}()
	return nil
}
