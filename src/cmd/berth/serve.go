package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/berth-registry/berth/src/pkg/audit"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/logbuf"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/pkg/meta/referrercache"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/registry"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/robot"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/pkg/tlsconfig"
	"github.com/berth-registry/berth/src/pkg/token"
	"github.com/berth-registry/berth/src/server"
	"github.com/berth-registry/berth/src/server/api"
	"github.com/berth-registry/berth/src/server/console"
	"github.com/berth-registry/berth/src/server/mirror"
	registryhttp "github.com/berth-registry/berth/src/server/registry"
	tokenhttp "github.com/berth-registry/berth/src/server/token"
)

// serve builds every component from the configuration, runs the HTTP server until ctx ends, then
// shuts down gracefully: the node first drains (health answers 503 for the shutdown drain delay while it
// still serves, so that a load balancer stops sending to it), then in-flight requests finish (up to the
// shutdown timeout), then background work stops and the stores close.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := config.Load(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		config.Help(stderr)
		return err
	}
	if err != nil {
		return err
	}
	var h hooks
	if path := os.Getenv(testClockEnv); path != "" {
		h.now = offsetClock(path)
		_, _ = fmt.Fprintf(stderr, "WARNING: %s is set: the clock is offset by the duration in %s (tests only)\n", testClockEnv, path)
	}
	return serveConfig(ctx, cfg, stderr, h)
}

// hooks are what a test of the whole graph injects into serveConfig; the zero value is production.
type hooks struct {
	now       func() time.Time // clock of the referrers controller and the in-process cache (nil = time.Now)
	listening func(net.Addr)   // called with the bound address before the server accepts requests
}

func (h hooks) clock() func() time.Time {
	if h.now == nil {
		return time.Now
	}
	return h.now
}

// serveConfig is serve with a loaded configuration and hooks.
func serveConfig(ctx context.Context, cfg config.Config, stderr io.Writer, h hooks) error {
	logOut := logbuf.Wrap(stderr, cfg.LogFlushInterval)
	defer func() { _ = logOut.Close() }()
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := sqlstore.Open(ctx, cfg.DatabaseURLOrDefault())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() { _ = store.Close() }()
	password, generatedPassword, err := bootstrapAdmin(ctx, store, cfg.AdminPassword, cfg.DataDir, log)
	if err != nil {
		return err
	}
	// The audit log is written off the request path, in batches; Close (deferred) writes what is queued.
	auditW := audit.NewWriter(store, audit.Options{Log: log.With("component", "audit")})
	defer auditW.Close()
	// Every request resolves its project: keep them in process briefly. Changes made through this
	// node's API apply at once; other nodes' changes show within the TTL.
	projects := projectcache.New(store, 2*time.Second)
	blobs, err := openStorage(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	// Disk figures (volumes, watermarks) are of the filesystem holding the blobs; on S3, of the data
	// dir's, where only uploads in progress are spooled.
	loc, _ := cfg.Storage() // validated with the configuration
	volumeDir := loc.Dir
	if loc.Bucket != "" {
		volumeDir = cfg.DataDir
	}
	disk := quota.StatFS(volumeDir)
	key, err := secret.LoadOrCreateKey(cfg.SecretKeyFileOrDefault())
	var weak *secret.InsecureKeyFileError
	if errors.As(err, &weak) {
		log.Warn("the secret key file is readable by others; restrict it to mode 0600", "err", err)
	} else if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return err
	}

	var metricsOpts []metrics.Option
	if cfg.MetricsProjectNames {
		metricsOpts = append(metricsOpts, metrics.WithProjectNames())
	}
	m := metrics.New(metricsOpts...)
	health := []api.Component{{Name: "database", Checker: store}}
	var kv cache.Cache
	// Console sessions outlive a restart and are known to every node: in Redis when there is one (its TTL
	// ends them), else in the database.
	var consoleSessions console.SessionStore = store
	// Leases make background jobs run on one node at a time and a blob be filled by one node: in Redis
	// when nodes share one, else in process (a single node).
	var leases lease.Locker = lease.NewLocal()
	var fillLeases lease.Locker // nil: fills are shared in process only
	if cfg.RedisURL != "" {
		redis.SetLogger(redisLogger{log.With("component", "redis")})
		client, err := cache.NewRedisClient(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		defer func() { _ = client.Close() }()
		// Each Redis call is capped: a Redis outage slows requests by at most this much, never fails them.
		rc := cache.NewRedis(client, cfg.RedisKeyPrefix, cache.WithOpTimeout(cfg.RedisOpTimeout))
		kv = rc
		consoleSessions = console.NewCacheSessions(rc)
		leases = lease.NewRedis(client, cfg.RedisKeyPrefix)
		fillLeases = leases
		health = append(health, api.Component{Name: "redis", Checker: rc})
	} else {
		kv, err = embeddedCache(ctx, cfg, log.With("component", "cache"), m, h.clock())
		if err != nil {
			return err
		}
		if c, ok := kv.(io.Closer); ok {
			defer func() { _ = c.Close() }()
		}
	}

	upstreamOpts := registry.Options{
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: cfg.UpstreamHeaderTimeout,
		MaxConnsPerHost:       cfg.UpstreamMaxConns,
		MaxPages:              cfg.ReferrersUpstreamPages,
		ReprobeInterval:       cfg.ReferrersReprobe,
		MaxReferrersBytes:     int64(cfg.UpstreamReferrersMaxBytes),
		MaxReferrersEntries:   cfg.UpstreamReferrersMaxEntries,
		Proxy:                 http.ProxyFromEnvironment,
		Logger:                log.With("component", "upstream"),
		UserAgent:             "berth/" + version,
	}
	clients := proxy.NewClients(store, box, upstreamOpts)
	clients.Instrument(func(id int64, rt http.RoundTripper) http.RoundTripper {
		return m.UpstreamTransport(strconv.FormatInt(id, 10), rt)
	})

	// Every referrers request merges the local referrers of its subject: keep the lists in process
	// briefly, with the same cross-node delay as projects. Every artifact write goes through this wrapper,
	// so this node's pushes are visible at once.
	artifacts := referrercache.New(store, 2*time.Second)
	// Every manifest GET and HEAD resolves a tag or a digest: keep those in process too, with the same
	// cross-node delay. Every artifact write goes through this wrapper (and then the one above).
	manifests := artifactcache.New(artifacts, 2*time.Second)
	// Online garbage collection (docs/gc.md): every write about to reference a blob pins it first.
	pins := gc.NewPins(store, blobs, gc.DefaultPinLease, nil)
	gcRunner := gc.NewRunner(store, gc.NewCollector(store, blobs, cfg.GCGracePeriod, nil), 0, log.With("component", "gc"))
	defer gcRunner.Close()
	localSvc := local.New(blobs, manifests, store, local.Options{MaxReferrersPage: cfg.ReferrersMaxPageSize, ReferrersPageSize: cfg.ReferrersPageSize, Logger: log,
		Pulls: store, Now: h.clock(),
		UploadKey: deriveKey(key, "berth upload session binding"), Pins: pins})
	defer func() { _ = localSvc.Close() }()
	// Quotas: proxy-cache projects over their storage limit, and the disk above its high watermark, evict
	// cached content through the same caching wrappers the content service reads through.
	evictor, err := quota.NewEvictor(quota.Options{Store: store, Blobs: blobs, Metrics: m, Log: log.With("component", "quota"),
		Remover: &quota.MetaRemover{Artifacts: manifests, Links: store, Store: store, Manifests: quota.StorageManifests{Blobs: blobs}}})
	if err != nil {
		return err
	}
	proxySvc := proxy.New(localSvc, clients, blobs, store, log.With("component", "proxy"), proxy.Options{
		FillTimeout: cfg.BlobFillTimeout, NegativeCacheTTL: cfg.ProxyNegativeCacheTTL, TagFreshness: cfg.ProxyTagFreshness,
		Leases: fillLeases,
		Quota:  evictor,
		Pins:   pins,
	})
	refs := referrers.New(localSvc, artifacts, listers{clients}, kv, m, log.With("component", "referrers"), referrers.Options{
		CacheTTL: cfg.ReferrersCacheTTL, Freshness: cfg.ReferrersFreshness,
		PageSize: cfg.ReferrersPageSize, MaxPageSize: cfg.ReferrersMaxPageSize,
		UpstreamTimeout: cfg.UpstreamHeaderTimeout * 2, NodeCacheTTL: cfg.ReferrersNodeCache, Now: h.clock(),
	})
	prefetch := referrers.NewPrefetcher(refs, proxySvc, cfg.ReferrersPrefetchWorker, 5*time.Minute, m, log.With("component", "prefetch"))
	defer prefetch.Close()
	proxySvc.OnSubjectPulled(prefetch.SubjectPulled)

	tokens, err := tokenService(cfg)
	if err != nil {
		return err
	}
	// A robot disabled or deleted is refused within a second, also with tokens issued before.
	robots := robot.NewVerifier(store, cfg.RobotNamePrefix, 500*time.Millisecond)
	// Retention removes through the caching wrappers, so this node forgets removed artifacts at once.
	retentions := retention.New(retention.Options{Store: store, Manifests: blobs, Flusher: localSvc, Now: h.clock(),
		Remover: lifecycle.NewRemover(manifests, log.With("component", "retention")), Log: log.With("component", "retention")})
	defer retentions.Close()

	// Failed logins are counted per client address and per user name and locked out exponentially.
	// Users and their project roles come from the store; successful password checks and roles are
	// reused for auth.DefaultCacheTTL. Robot names go to the robot verifier, bearer tokens to the token
	// service's verifier.
	authn := auth.New(store, auth.WithThrottle(auth.NewThrottle(auth.ThrottleOptions{}), log.With("component", "auth")),
		auth.WithAudit(auditW), auth.WithBasic(robots), auth.WithBearer(token.NewVerifier(tokens, robots.Active)))
	// Registry-mirror routing (?ns=, the default project): a table of every project, rebuilt after
	// changes made through this node's API, and every 5 s for other nodes' changes.
	mirrors := mirror.NewRouter(store, cfg.MirrorDefaultProject, 5*time.Second, log.With("component", "mirror"))
	// The registry handlers only read projects: they get the cached ones without a copy per request.
	v2 := registryhttp.New(service{Service: proxySvc, refs: refs}, projects.ReadOnly(), authn, log.With("component", "registry"),
		registryhttp.Options{MaxReferrersPage: cfg.ReferrersMaxPageSize, Mirror: mirrors,
			// Docker's registry-mirrors cannot answer the Basic challenge of an anonymous /v2/ ping.
			AnonymousBase: cfg.MirrorDefaultProject != "",
			Bearer:        bearerChallenge(cfg),
			Audit:         auditW, AuditPulls: cfg.AuditLogPulls})
	var draining atomic.Bool // set on SIGTERM: health answers 503 until the process exits
	apiH, err := api.New(api.Deps{
		Projects: mirror.Projects{Next: projects, Router: mirrors}, Registries: mirror.Registries{Next: store, Router: mirrors}, Repositories: store, Box: box, Auth: authn,
		Pinger: api.RegistryPingerFunc(func(ctx context.Context, r meta.Registry) error {
			ep, err := proxy.Endpoint(&r, plain{})
			if err != nil {
				return err
			}
			c, err := registry.NewClient(ep, upstreamOpts)
			if err != nil {
				return err
			}
			return c.Ping(ctx)
		}),
		Health: health, Draining: draining.Load, Log: log.With("component", "api"),
		Artifacts: apiArtifacts{RepositoryStore: store, ArtifactStore: artifacts, blobs: blobs},
		Robots:    store, RobotPrefix: cfg.RobotNamePrefix,
		Users: store, Members: store, AuditLog: store, Audit: auditW,
		Retentions: &api.Retentions{Store: store, Runner: retentions},
		Usage:      store,
		Volumes:    func(context.Context) (uint64, uint64, error) { return disk() },
		GC:         &api.GCDeps{Store: store, Runner: gcRunner},
	})
	if err != nil {
		return err
	}
	// The web console reads referrers through refs, the controller behind /v2/<name>/referrers.
	consoleH, err := console.New(console.Deps{
		Projects: projects, Registries: store, Artifacts: apiArtifacts{RepositoryStore: store, ArtifactStore: artifacts, blobs: blobs},
		Referrers: refs, Auth: authn, Box: box, Pinger: upstreamPinger(upstreamOpts), Metrics: m,
		Log: log.With("component", "console"), Sessions: consoleSessions,
		ProjectCreated: func(ctx context.Context, p *meta.Project) {
			if !p.IsProxy() {
				return
			}
			if _, err := retention.CreateDefaultPolicy(ctx, projects, store, p); err != nil {
				log.ErrorContext(ctx, "creating the default retention policy of a proxy-cache project failed", "project", p.Name, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}

	serverOpts := []server.Option{server.WithAccessLogWriter(logOut, cfg.LogFormat), server.WithStallTimeout(cfg.StallTimeout),
		server.WithTokenService(tokenhttp.New(tokens, authn, projects.ReadOnly(), log.With("component", "token")))}
	if cfg.MetricsAddr != "" {
		serverOpts = append(serverOpts, server.WithoutMetrics())
	}
	// No ReadTimeout or WriteTimeout: they would bound a whole blob transfer. Stalls are cut by
	// server.WithStallTimeout instead, which moves the deadlines with progress.
	srv := &http.Server{
		// log is a plain handler on logOut (newLogger): request lines may be formatted directly.
		Handler:           server.New(v2, apiH, m, log, append(serverOpts, server.WithConsole(consoleH))...),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCertFile != "" {
		if srv.TLSConfig, err = tlsconfig.Server(cfg.TLSCertFile, cfg.TLSKeyFile, tlsconfig.Options{
			ClientCAFile: cfg.TLSClientCAFile, Logger: log.With("component", "tls"),
		}); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("berth listening", "version", version, "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil, "data_dir", cfg.DataDir,
		"database", redactURL(cfg.DatabaseURLOrDefault()), "redis", redactURL(cfg.RedisURL))
	if generatedPassword != "" {
		logGeneratedPassword(log, password, generatedPassword)
	}
	if h.listening != nil {
		h.listening(ln.Addr())
	}

	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	go lease.Every(bg, leases, "purge-uploads", time.Hour, purgeUploads(blobs, 24*time.Hour, log.With("component", "janitor")),
		log.With("component", "janitor"), lease.EveryOptions{})
	if cfg.AuditLogRetention > 0 {
		alog := log.With("component", "audit")
		go lease.Every(bg, leases, "purge-audit", time.Hour, audit.PurgeJob(store, cfg.AuditLogRetention, alog), alog, lease.EveryOptions{})
	}
	go lease.Every(bg, leases, "retention-schedule", retention.ScheduleInterval, retentions.ScheduleJob(),
		log.With("component", "retention"), lease.EveryOptions{})
	if loc.Bucket == "" {
		// Evicting S3 content frees nothing on the local disk: watermarks apply to file storage only.
		go evictor.RunWatermarks(bg, quota.Watermarks{High: cfg.StorageHighWatermark, Low: cfg.StorageLowWatermark, Disk: disk},
			cfg.StorageWatermarkInterval, nil)
	}
	go gcRunner.Schedule(bg, 30*time.Second)
	if cfg.DebugAddr != "" {
		if err := serveDebug(bg, cfg.DebugAddr, log.With("component", "debug")); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
	}
	if cfg.MetricsAddr != "" {
		if err := serveMetrics(bg, cfg.MetricsAddr, m.Handler(), log.With("component", "metrics")); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
	}

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	if cfg.ShutdownDrainDelay > 0 {
		log.Info("shutting down: draining (health answers 503) before refusing new requests", "delay", cfg.ShutdownDrainDelay)
		select {
		case <-time.After(cfg.ShutdownDrainDelay):
		case err := <-errc:
			return err
		}
	}
	log.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

var _ proxy.Quota = (*quota.Evictor)(nil)

// plain passes a secret through: the ping endpoint hands over plaintext credentials.
type plain struct{}

func (plain) Open(s string) (string, error) { return s, nil }

// listers adapts proxy.Clients to referrers.Listers.
type listers struct{ c *proxy.Clients }

func (l listers) Lister(ctx context.Context, registryID int64) (referrers.Lister, error) {
	return l.c.Client(ctx, registryID)
}

// service is the pull-through service with referrers served by the Proxy Referrer API controller.
type service struct {
	*proxy.Service
	refs *referrers.Controller
}

func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format must be text or json, not %q", cfg.LogFormat)
}

// redactURL hides a password in a URL for logging.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if colon := strings.Index(s[i+3:at], ":"); colon >= 0 {
				return s[:i+3+colon] + ":*****" + s[at:]
			}
		}
	}
	return s
}

// ListReferrers routes referrers requests to the Proxy Referrer API controller.
func (s service) ListReferrers(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) (*content.ReferrersPage, error) {
	return s.refs.ListReferrers(ctx, repo, subject, q)
}

// deriveKey derives a key for one purpose from the secret key, so that the secret key itself is used
// only to seal credentials. Every node sharing the secret key derives the same keys.
func deriveKey(secretKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
