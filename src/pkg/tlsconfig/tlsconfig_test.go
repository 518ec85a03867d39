package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/tlsconfig"
	"github.com/berth-registry/berth/src/pkg/tlsconfig/tlstest"
)

// serveTLS runs an HTTPS server with cfg on a loopback port and returns its URL.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = srv.Close()
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return "https://" + ln.Addr().String() + "/"
}

// client trusts ca; each request opens a new connection, so each request is a new handshake.
func client(ca *tlstest.CA, clientCert *tls.Certificate, maxVersion uint16) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool, MaxVersion: maxVersion, MinVersion: tls.VersionTLS10} //nolint:gosec // the test checks that the server refuses old versions
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: true}}
}

// servedSerial fetches url and returns the serial of the server certificate and the HTTP major version.
func servedSerial(t *testing.T, c *http.Client, url string) (*big.Int, int) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.TLS.PeerCertificates[0].SerialNumber, resp.ProtoMajor
}

func TestRotationAndBadPair(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	first := ca.Server(t, dir, "server", "127.0.0.1")
	cfg, err := tlsconfig.Server(first.CertFile, first.KeyFile, tlsconfig.Options{CheckInterval: -1})
	require.NoError(t, err)
	url := serveTLS(t, cfg)
	c := client(ca, nil, 0)

	got, proto := servedSerial(t, c, url)
	require.Equal(t, first.Serial, got)
	require.Equal(t, 2, proto, "HTTP/2 over TLS")

	second := ca.Server(t, dir, "server", "127.0.0.1")
	got, _ = servedSerial(t, c, url)
	require.Equal(t, second.Serial, got, "the next handshake sees the rotated pair")

	// A certificate whose key does not match (a rotation half done) keeps the previous certificate.
	other := ca.Server(t, t.TempDir(), "other", "127.0.0.1")
	third := ca.Server(t, t.TempDir(), "third", "127.0.0.1")
	replace(t, third.CertFile, second.CertFile)
	replace(t, other.KeyFile, second.KeyFile)
	got, _ = servedSerial(t, c, url)
	require.Equal(t, second.Serial, got)
	// Garbage is refused the same way.
	require.NoError(t, os.WriteFile(second.CertFile, []byte("not a certificate"), 0o600))
	got, _ = servedSerial(t, c, url)
	require.Equal(t, second.Serial, got)

	// Once the pair is whole again, it is served.
	replace(t, third.CertFile, second.CertFile)
	replace(t, third.KeyFile, second.KeyFile)
	got, _ = servedSerial(t, c, url)
	require.Equal(t, third.Serial, got)
}

// replace copies src over dst through a rename.
func replace(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst+".new", b, 0o600)) //nolint:gosec // dst is a file of the test's temp dir
	require.NoError(t, os.Rename(dst+".new", dst))
}

func TestCheckInterval(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	first := ca.Server(t, dir, "server", "127.0.0.1")
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r, err := tlsconfig.NewReloader(first.CertFile, first.KeyFile, tlsconfig.Options{CheckInterval: 5 * time.Second, Now: clock})
	require.NoError(t, err)
	serial := func() *big.Int {
		c, err := r.GetCertificate(nil)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		require.NoError(t, err)
		return leaf.SerialNumber
	}

	second := ca.Server(t, dir, "server", "127.0.0.1")
	advance(4 * time.Second)
	require.Equal(t, first.Serial, serial(), "files are not checked before the interval passed")
	advance(time.Second)
	require.Equal(t, second.Serial, serial())
}

func TestClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	clientCA := tlstest.NewCA(t, "client CA")
	strangerCA := tlstest.NewCA(t, "stranger CA")
	dir := t.TempDir()
	srvPair := ca.Server(t, dir, "server", "127.0.0.1")
	cfg, err := tlsconfig.Server(srvPair.CertFile, srvPair.KeyFile, tlsconfig.Options{ClientCAFile: clientCA.CertFile})
	require.NoError(t, err)
	url := serveTLS(t, cfg)

	load := func(p tlstest.Pair) *tls.Certificate {
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		require.NoError(t, err)
		return &c
	}
	good := load(clientCA.Client(t, dir, "client"))
	stranger := load(strangerCA.Client(t, dir, "stranger"))

	tests := []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"no certificate", nil, false},
		{"certificate of another CA", stranger, false},
		{"certificate of the client CA", good, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client(ca, tc.cert, 0).Get(url)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
}

func TestRefusesOldTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	p := ca.Server(t, t.TempDir(), "server", "127.0.0.1")
	cfg, err := tlsconfig.Server(p.CertFile, p.KeyFile, tlsconfig.Options{})
	require.NoError(t, err)
	url := serveTLS(t, cfg)
	resp, err := client(ca, nil, tls.VersionTLS11).Get(url)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "a TLS 1.1 client is refused")
	got, _ := servedSerial(t, client(ca, nil, tls.VersionTLS12), url)
	require.Equal(t, p.Serial, got)
}

func TestServerRefusesBadFiles(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	p := ca.Server(t, dir, "server", "127.0.0.1")
	q := ca.Server(t, dir, "other", "127.0.0.1")
	empty := filepath.Join(dir, "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("no pem here"), 0o600))
	tests := []struct {
		name            string
		cert, key, caFn string
	}{
		{"missing cert", filepath.Join(dir, "missing.crt"), p.KeyFile, ""},
		{"key of another cert", p.CertFile, q.KeyFile, ""},
		{"client CA without a certificate", p.CertFile, p.KeyFile, empty},
		{"missing client CA", p.CertFile, p.KeyFile, filepath.Join(dir, "missing-ca.pem")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconfig.Server(tc.cert, tc.key, tlsconfig.Options{ClientCAFile: tc.caFn})
			require.Error(t, err)
		})
	}
}
