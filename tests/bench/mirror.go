package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// MirrorResult is issue 10's figures: a warm blob GET from Berth over HTTPS vs the same Berth build over
// plain HTTP (recorded, no target), and containerd pulling an image through Berth's warm cache vs
// directly (target: ratio >= 0.9) and through a cold Berth vs directly (recorded).
type MirrorResult struct {
	BlobSize   int64
	TLSBlob    Comparison // "Berth" = HTTPS, "Base" = plain HTTP
	Containerd ContainerdPulls
}

// RunMirror starts two Berths, one serving HTTPS with a self-signed certificate and one plain HTTP,
// pushes the same blob into both, and compares warm GETs (HTTP/1.1 keep-alive connections on both, so
// the difference is TLS itself).
func (r *Runner) RunMirror(ctx context.Context) (res MirrorResult, err error) {
	cfg := r.Cfg
	res.BlobSize = cfg.BlobSize
	certFile, keyFile, pool, err := selfSigned(r.dir)
	if err != nil {
		return res, err
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	args := append(append(append([]string{}, berthArgs...), "--tls-cert-file", certFile, "--tls-key-file", keyFile), r.Cfg.BerthArgs...)
	secure, err := startBerthTLS(ctx, cfg.BerthBin, r.dir, r.cpus, tlsCfg, args...)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(secure, &err)
	plain, err := r.startBerth(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopBerth(plain, &err)

	const repo = "bench/app"
	blob := NewContent(10, cfg.BlobSize)
	path := "/v2/" + repo + "/blobs/" + blob.Digest().String()
	for _, b := range []*Berth{secure, plain} {
		if err := b.CreateProject(ctx, "bench", 0, false); err != nil {
			return res, err
		}
		if err := b.PushBlob(ctx, repo, blob.Digest(), blob.Reader(0), blob.Size); err != nil {
			return res, fmt.Errorf("push blob: %w", err)
		}
	}
	r.progress("mirror: blob GET %s over HTTPS vs HTTP, %d connections", MiB(float64(blob.Size)), cfg.BlobConns)
	if res.TLSBlob, err = r.plan().Compare(ctx, "blob GET, HTTPS vs HTTP",
		Load{URL: secure.URL + path, Conns: cfg.BlobConns, WantBytes: blob.Size, TLS: tlsCfg},
		Load{URL: plain.URL + path, Conns: cfg.BlobConns, WantBytes: blob.Size}, ""); err != nil {
		return res, err
	}
	r.progress("mirror: containerd pulls of %d x %s, warm and cold through Berth vs direct", pullLayers, MiB(pullLayerSize))
	res.Containerd, err = r.runContainerdPulls(ctx)
	return res, err
}

// selfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1 into dir and returns its files
// and a pool that trusts it.
func selfSigned(dir string) (certFile, keyFile string, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "berthbench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "bench-tls.crt"), filepath.Join(dir, "bench-tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool, nil
}

// mirrorDetail renders issue 10's figures.
func (r *Report) mirrorDetail(p printer) {
	m := r.Mirror
	if m == nil || len(m.TLSBlob.Berth) == 0 {
		return
	}
	p("### Registry mirror: HTTPS (issue 10)\n\n")
	p("Two Berths of the same build, one serving HTTPS (TLS 1.3, ECDSA P-256 certificate) and one plain HTTP, hold the same %s blob;\n", MiB(float64(m.BlobSize)))
	p("clients GET it over %d HTTP/1.1 keep-alive connections each, in interleaved rounds. Recorded, no target.\n\n", m.TLSBlob.Conns)
	tlsMed, plainMed := m.TLSBlob.Median(FigThroughput)
	p("| Figure | HTTPS | HTTP | Ratio HTTPS / HTTP |\n|---|---|---|---|\n")
	p("| Blob GET throughput | %s | %s | %s |\n\n", mibps(tlsMed), mibps(plainMed), m.TLSBlob.Ratio(FigThroughput))
	c := m.Containerd
	if c.Skipped != "" {
		p("containerd pulls: not measured (%s).\n\n", c.Skipped)
		return
	}
	if len(c.Direct) == 0 || len(c.Through) == 0 {
		return
	}
	p("containerd 1.6 (`ctr content fetch`, a fresh namespace per pull with content sharing isolated, so every byte is downloaded\n")
	p("and verified) pulls an image of %d x %s layers from a go-containerregistry upstream directly and through a Berth proxy-cache\n", c.Layers, MiB(float64(c.LayerSize)))
	p("project (hosts.toml, per-project form), in interleaved rounds. Warm: one Berth whose cache holds the image (%d rounds;\n", len(c.Direct))
	p("target: ratio (direct time / Berth time) >= 0.9). Cold: a Berth started with an empty data directory for each round (not timed),\n")
	p("the upstream kept running; each cold round is checked to have fetched every layer from the upstream (%d rounds; recorded).\n\n", len(c.Cold))
	p("| Figure | Through Berth | Direct | Ratio | Target | Met |\n|---|---|---|---|---|---|\n")
	dur := func(ds []time.Duration) string {
		return time.Duration(median(seconds(ds)) * float64(time.Second)).Round(time.Millisecond).String()
	}
	p("| Pull time, warm, median | %s | %s | %s | >= 0.9 | %s |\n", dur(c.Through), dur(c.Direct), c.Ratio(), yesNo(c.Ratio().Med >= 0.9))
	if len(c.Cold) > 0 && len(c.ColdDirect) > 0 {
		p("| Pull time, cold, median | %s | %s | %s | - | - |\n", dur(c.Cold), dur(c.ColdDirect), c.ColdRatio())
	}
	p("\n")
}
