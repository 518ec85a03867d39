package main

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/berth-registry/berth/src/pkg/audit"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/logbuf"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/pkg/meta/referrercache"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/pkg/token"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/server/api"
	"github.com/berth-registry/berth/src/server/console"
	"github.com/berth-registry/berth/src/server/mirror"
)

// node is one Berth process as serveConfig builds it: each group of fields is filled by one step, in
// the order of the groups, and later steps read what earlier ones built.
type node struct {
	cfg config.Config
	h   hooks
	// closers are run by close, last added first, as defers would be.
	closers []func()

	// openLog (serve.go)
	logOut logbuf.WriteCloser
	log    *slog.Logger
	// openDatabase (serve_stores.go)
	store             meta.Store
	password          string // the admin password bootstrapAdmin set (logged only when it generated it)
	generatedPassword string // the file holding a generated admin password ("" when none was generated)
	auditW            *audit.Writer
	projects          *projectcache.Store
	health            []api.Component // the database; openRedis adds Redis
	// openStorage (serve_stores.go)
	blobs blobStore
	onS3  bool
	disk  quota.Disk
	// openSecrets (serve_stores.go)
	key []byte
	box *secret.Box

	// openCaches (serve_caches.go)
	m               *metrics.Metrics
	kv              cache.Cache
	consoleSessions console.SessionStore
	leases          lease.Locker
	fillLeases      lease.Locker // nil: fills are shared in process only

	// buildContent (serve_content.go)
	upstreamOpts upstream.Options
	clients      *upstream.Clients
	artifacts    *referrercache.Store
	manifests    *artifactcache.Store
	gcRunner     *gc.Runner
	localSvc     *local.Service
	evictor      *quota.Evictor
	proxySvc     *proxy.Service
	refs         *referrers.Controller
	retentions   *retention.Service

	// buildAccess (serve_access.go)
	tokens  *token.Service
	authn   *auth.Authenticator
	mirrors *mirror.Router

	// buildHTTP (serve_http.go)
	srv      *http.Server
	draining atomic.Bool // set on SIGTERM: health answers 503 until the process exits
}

// onClose registers f to run when the node closes, before everything registered earlier.
func (n *node) onClose(f func()) { n.closers = append(n.closers, f) }

// close runs the registered closers, last registered first.
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}
