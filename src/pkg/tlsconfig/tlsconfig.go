// Package tlsconfig builds the server-side TLS configuration of Berth's listener: TLS 1.2 or newer,
// HTTP/2 offered through ALPN, an optional client CA that makes client certificates mandatory (mTLS),
// and a certificate pair that is read again from its files when they change, so that a rotation by
// cert-manager or certbot needs no restart.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckInterval is how often, at most, the certificate files are checked for changes.
const DefaultCheckInterval = 5 * time.Second

// Options tune Server and NewReloader. The zero value is usable.
type Options struct {
	// ClientCAFile, when set, is a PEM bundle of CAs: every client must present a certificate they
	// signed (mTLS).
	ClientCAFile string
	// CheckInterval is how often, at most, a handshake checks the files for changes (0:
	// DefaultCheckInterval; negative: on every handshake).
	CheckInterval time.Duration
	// Logger receives reloads and refused pairs (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server returns the server TLS configuration for a certificate and key file. It fails when the pair
// cannot be loaded or the client CA file holds no certificate.
func Server(certFile, keyFile string, opts Options) (*tls.Config, error) {
	r, err := NewReloader(certFile, keyFile, opts)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		// net/http serves HTTP/2 on a TLS listener when the client offers it through ALPN.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if opts.ClientCAFile != "" {
		pem, err := os.ReadFile(opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA %s: no PEM certificate found", opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Reloader serves a certificate pair read from two files. A handshake that comes at least the check
// interval after the previous check compares the files' identity, size and modification time with what
// was loaded; when either changed, the pair is read again. A pair that does not load (a half-written
// rotation, a key that does not match) is refused with a log line, and the previous certificate keeps
// being served until the files change again. It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]os.FileInfo // of certFile and keyFile as last tried
	checked time.Time
}

// NewReloader loads the pair once; an unusable pair at start is an error.
func NewReloader(certFile, keyFile string, opts Options) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: opts.CheckInterval, log: opts.Logger, now: opts.Now}
	if r.interval == 0 {
		r.interval = DefaultCheckInterval
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	r.cert, r.stamps, r.checked = &cert, stamps, r.now()
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate, reloaded first when the files
// changed.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.interval < 0 || now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.reloadIfChanged()
	}
	return r.cert, nil
}

// reloadIfChanged reads the pair again when a file changed. Called with mu held.
func (r *Reloader) reloadIfChanged() {
	stamps, err := r.stat()
	if err != nil {
		r.log.Warn("tls: cannot check the certificate files; serving the previous certificate", "err", err)
		return
	}
	if same(stamps[0], r.stamps[0]) && same(stamps[1], r.stamps[1]) {
		return
	}
	// Remember what was tried, so a bad pair is reported once, not at every check.
	r.stamps = stamps
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Warn("tls: the changed certificate pair does not load; serving the previous certificate", "cert", r.certFile, "err", err)
		return
	}
	r.cert = &cert
	r.log.Info("tls: certificate reloaded", "cert", r.certFile)
}

func (r *Reloader) stat() ([2]os.FileInfo, error) {
	c, errC := os.Stat(r.certFile)
	k, errK := os.Stat(r.keyFile)
	if err := errors.Join(errC, errK); err != nil {
		return [2]os.FileInfo{}, fmt.Errorf("tls certificate: %w", err)
	}
	return [2]os.FileInfo{c, k}, nil
}

// same reports whether two stats describe the same, unchanged file: a rename over it (how cert-manager
// and certbot swap files) changes its identity; an overwrite changes its size or modification time.
func same(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
