package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/tlsconfig"
	"github.com/berth-registry/berth/src/server"
	"github.com/berth-registry/berth/src/server/api"
	"github.com/berth-registry/berth/src/server/console"
	"github.com/berth-registry/berth/src/server/mirror"
	registryhttp "github.com/berth-registry/berth/src/server/registry"
	tokenhttp "github.com/berth-registry/berth/src/server/token"
)

// buildHTTP builds the handlers (registry, Harbor API, console, token) and the HTTP server over them.
func (n *node) buildHTTP(context.Context) error {
	cfg := n.cfg
	// The registry handlers only read projects: they get the cached ones without a copy per request.
	v2 := registryhttp.New(pullThrough(n.proxySvc, n.refs), n.projects.ReadOnly(), n.authn, n.log.With("component", "registry"),
		registryhttp.Options{Mirror: n.mirrors,
			// Docker's registry-mirrors cannot answer the Basic challenge of an anonymous /v2/ ping.
			AnonymousBase: cfg.MirrorDefaultProject != "",
			Bearer:        bearerChallenge(cfg),
			Audit:         n.auditW, AuditPulls: cfg.AuditLogPulls})
	apiH, err := n.buildAPI()
	if err != nil {
		return err
	}
	consoleH, err := n.buildConsole()
	if err != nil {
		return err
	}
	serverOpts := []server.Option{server.WithAccessLogWriter(n.logOut, cfg.LogFormat), server.WithStallTimeout(cfg.StallTimeout),
		server.WithTokenService(tokenhttp.New(n.tokens, n.authn, n.projects.ReadOnly(), n.log.With("component", "token")))}
	if cfg.MetricsAddr != "" {
		serverOpts = append(serverOpts, server.WithoutMetrics())
	}
	// No ReadTimeout or WriteTimeout: they would bound a whole blob transfer. Stalls are cut by
	// server.WithStallTimeout instead, which moves the deadlines with progress.
	n.srv = &http.Server{
		// log is a plain handler on logOut (newLogger): request lines may be formatted directly.
		Handler:           server.New(v2, apiH, n.m, n.log, append(serverOpts, server.WithConsole(consoleH))...),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCertFile != "" {
		if n.srv.TLSConfig, err = tlsconfig.Server(cfg.TLSCertFile, cfg.TLSKeyFile, tlsconfig.Options{
			ClientCAFile: cfg.TLSClientCAFile, Logger: n.log.With("component", "tls"),
		}); err != nil {
			return err
		}
	}
	return nil
}

// apiArtifactSource is what the API and the console read repositories and artifacts from.
func (n *node) apiArtifactSource() apiArtifacts {
	return apiArtifacts{RepositoryStore: n.store, ArtifactStore: n.artifacts, blobs: n.blobs}
}

// buildAPI builds the Harbor API handler.
func (n *node) buildAPI() (*api.API, error) {
	store := n.store
	return api.New(api.Deps{
		Projects: mirror.Projects{Next: n.projects, Router: n.mirrors}, Registries: mirror.Registries{Next: store, Router: n.mirrors},
		Repositories: store, Box: n.box, Auth: n.authn,
		Pinger: upstreamPinger(n.upstreamOpts),
		Health: n.health, Draining: n.draining.Load, Log: n.log.With("component", "api"),
		Artifacts: n.apiArtifactSource(),
		Robots:    store, RobotPrefix: n.cfg.RobotNamePrefix,
		Users: store, Members: store, AuditLog: store, Audit: n.auditW,
		Retentions: &api.Retentions{Store: store, Runner: n.retentions},
		Usage:      store,
		Volumes:    func(context.Context) (uint64, uint64, error) { return n.disk() },
		GC:         &api.GCDeps{Store: store, Runner: n.gcRunner},
	})
}

// buildConsole builds the web console; it reads referrers through refs, the controller behind
// /v2/<name>/referrers.
func (n *node) buildConsole() (*console.Console, error) {
	return console.New(console.Deps{
		Projects: n.projects, Registries: n.store, Artifacts: n.apiArtifactSource(),
		Referrers: n.refs, Auth: n.authn, Box: n.box, Pinger: upstreamPinger(n.upstreamOpts), Metrics: n.m,
		Log: n.log.With("component", "console"), Sessions: n.consoleSessions,
		ProjectCreated: func(ctx context.Context, p *meta.Project) {
			if !p.IsProxy() {
				return
			}
			if _, err := retention.CreateDefaultPolicy(ctx, n.projects, n.store, p); err != nil {
				n.log.ErrorContext(ctx, "creating the default retention policy of a proxy-cache project failed", "project", p.Name, "err", err)
			}
		},
	})
}
