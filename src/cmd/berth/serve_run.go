package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/berth-registry/berth/src/pkg/audit"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/retention"
)

// run listens, starts the background jobs and serves until ctx ends, then shuts down gracefully.
func (n *node) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return err
	}
	n.log.Info("berth listening", "version", version, "addr", ln.Addr().String(), "tls", n.srv.TLSConfig != nil, "data_dir", n.cfg.DataDir,
		"database", redactURL(n.cfg.DatabaseURLOrDefault()), "redis", redactURL(n.cfg.RedisURL))
	if n.generatedPassword != "" {
		logGeneratedPassword(n.log, n.password, n.generatedPassword)
	}
	if n.h.listening != nil {
		n.h.listening(ln.Addr())
	}
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	if err := n.startBackground(bg); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		if n.srv.TLSConfig != nil {
			errc <- n.srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			return
		}
		errc <- n.srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return n.shutdown(ctx, errc)
}

// startBackground starts the periodic jobs and the side listeners (debug, metrics); they stop with bg.
func (n *node) startBackground(bg context.Context) error {
	cfg, store := n.cfg, n.store
	go lease.Every(bg, n.leases, "purge-uploads", time.Hour, purgeUploads(n.blobs, 24*time.Hour, n.log.With("component", "janitor")),
		n.log.With("component", "janitor"), lease.EveryOptions{})
	if cfg.AuditLogRetention > 0 {
		alog := n.log.With("component", "audit")
		go lease.Every(bg, n.leases, "purge-audit", time.Hour, audit.PurgeJob(store, cfg.AuditLogRetention, alog), alog, lease.EveryOptions{})
	}
	go lease.Every(bg, n.leases, "retention-schedule", retention.ScheduleInterval, n.retentions.ScheduleJob(),
		n.log.With("component", "retention"), lease.EveryOptions{})
	if !n.onS3 {
		// Evicting S3 content frees nothing on the local disk: watermarks apply to file storage only.
		go n.evictor.RunWatermarks(bg, quota.Watermarks{High: cfg.StorageHighWatermark, Low: cfg.StorageLowWatermark, Disk: n.disk},
			cfg.StorageWatermarkInterval, nil)
	}
	go n.gcRunner.Schedule(bg, 30*time.Second)
	if cfg.DebugAddr != "" {
		if err := serveDebug(bg, cfg.DebugAddr, n.log.With("component", "debug")); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
	}
	if cfg.MetricsAddr != "" {
		if err := serveMetrics(bg, cfg.MetricsAddr, n.m.Handler(), n.log.With("component", "metrics")); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	return nil
}

// shutdown drains (health answers 503 for the drain delay while the node still serves), then waits for
// in-flight requests up to the shutdown timeout. errc carries the server's own end.
func (n *node) shutdown(ctx context.Context, errc <-chan error) error {
	n.draining.Store(true)
	if d := n.cfg.ShutdownDrainDelay; d > 0 {
		n.log.Info("shutting down: draining (health answers 503) before refusing new requests", "delay", d)
		select {
		case <-time.After(d):
		case err := <-errc:
			return err
		}
	}
	n.log.Info("shutting down: waiting for in-flight requests", "timeout", n.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ShutdownTimeout)
	defer cancel()
	if err := n.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	n.log.Info("stopped")
	return nil
}
