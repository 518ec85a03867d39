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
	"os"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/logbuf"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/upstream"
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

// serveConfig is serve with a loaded configuration and hooks. It builds the node one subsystem at a
// time (node.go and the serve_*.go files), then serves until ctx ends; whatever was built is closed in
// the reverse order of building, on every return.
func serveConfig(ctx context.Context, cfg config.Config, stderr io.Writer, h hooks) error {
	n := &node{cfg: cfg, h: h}
	defer n.close()
	steps := []func(context.Context) error{
		func(context.Context) error { return n.openLog(stderr) },
		n.openDatabase,
		n.openStorage,
		n.openSecrets,
		n.openCaches,
		n.buildContent,
		n.buildAccess,
		n.buildHTTP,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return n.run(ctx)
}

// openLog starts the buffered log output on stderr and the logger writing to it.
func (n *node) openLog(stderr io.Writer) error {
	n.logOut = logbuf.Wrap(stderr, n.cfg.LogFlushInterval)
	n.onClose(func() { _ = n.logOut.Close() })
	log, err := newLogger(n.cfg, n.logOut)
	if err != nil {
		return err
	}
	n.log = log
	return nil
}

var _ proxy.Quota = (*quota.Evictor)(nil)

// plain passes a secret through: the ping endpoint hands over plaintext credentials.
type plain struct{}

func (plain) Open(s string) (string, error) { return s, nil }

// listers adapts the upstream client pool to referrers.Listers.
type listers struct{ c *upstream.Clients }

func (l listers) Lister(ctx context.Context, registryID int64) (referrers.Lister, error) {
	return l.c.Client(ctx, registryID)
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

// pullThrough is the service of the /v2/ API: the pull-through service for everything but referrers,
// which the Proxy Referrer API controller answers.
func pullThrough(p *proxy.Service, refs *referrers.Controller) content.Composite {
	return content.Composite{Manifests: p, Blobs: p, Uploads: p, Tags: p, Catalog: p, Referrers: refs}
}

// deriveKey derives a key for one purpose from the secret key, so that the secret key itself is used
// only to seal credentials. Every node sharing the secret key derives the same keys.
func deriveKey(secretKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
