package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StorageResult is issue 13's figures: Berth on S3 (a versitygw with its posix backend, a separate
// process on loopback) against a direct GET from that S3 server, with and without redirects, and cold
// pull-through onto S3 against onto the filesystem.
type StorageResult struct {
	BlobSize int64
	Warm     Comparison // Berth on S3 vs a presigned GET straight from the S3 server
	Redirect Comparison // the same with storage-redirect: the client follows the 307
	Shared   Comparison // Warm with the S3 server on Berth's CPUs instead of the client's (pinned runs only)
	ColdFS   []Pull     // cold pull-through onto the filesystem
	ColdS3   []Pull     // the same onto S3
}

// s3Server is a running versitygw with one bucket.
type s3Server struct {
	proc     *Proc
	endpoint string
	key      string
	secret   string
	bucket   string
	client   *s3.Client
}

// startS3 starts versitygw (Config.VersityGW) on a free loopback port with a bucket.
func (r *Runner) startS3(ctx context.Context) (*s3Server, error) {
	if r.Cfg.VersityGW == "" {
		return nil, fmt.Errorf("no versitygw binary (-versitygw; scripts/install-tools.sh versitygw)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := &s3Server{endpoint: "http://" + addr, key: "bench" + hex.EncodeToString(b[:4]), secret: hex.EncodeToString(b), bucket: "bench"}
	dir := filepath.Join(r.dir, "s3")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	s.proc, _, err = startProc("versitygw", dir+".log", childEnv(), false, r.clientCPUs(), r.Cfg.VersityGW,
		"--access", s.key, "--secret", s.secret, "--port", addr, "--quiet", "posix", dir)
	if err != nil {
		return nil, err
	}
	s.client = s3.New(s3.Options{BaseEndpoint: aws.String(s.endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.key, s.secret, "")})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = s.proc.Stop()
			return nil, fmt.Errorf("versitygw on %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// berthArgs are the serve arguments that put a Berth's storage on s (under prefix).
func (s *s3Server) berthArgs(prefix string) []string {
	return []string{"--storage-url", "s3://" + s.bucket + "/" + prefix, "--storage-s3-endpoint", s.endpoint,
		"--storage-s3-path-style", "--storage-s3-access-key", s.key, "--storage-s3-secret-key", s.secret}
}

// RunStorage measures warm blob GETs through Berth on S3 against direct GETs from the S3 server, with
// redirects off and on, then cold pull-through rounds onto the filesystem and onto S3.
//
// When the run pins (ServerCPUs), the S3 server runs on the client's CPUs: it stands for an object
// store on other machines, so that the direct GET and the GET through Berth share the same CPU for
// the client and the S3 server, and Berth, the hop under test, has the server CPUs as in the other
// scenarios. The same comparison with the S3 server moved onto Berth's CPUs follows, for context.
func (r *Runner) RunStorage(ctx context.Context) (res StorageResult, err error) {
	cfg := r.Cfg
	res.BlobSize = cfg.BlobSize
	s3s, err := r.startS3(ctx)
	if err != nil {
		return res, err
	}
	defer r.stopProc(s3s.proc, &err)
	blob := NewContent(13, cfg.BlobSize)
	const repo = "bench/app"
	path := "/v2/" + repo + "/blobs/" + blob.Digest().String()
	var direct string
	for i, redirect := range []bool{false, true} {
		args := s3s.berthArgs("warm")
		if redirect {
			args = append(args, "--storage-redirect", "--storage-redirect-expiry", "1h")
		}
		b, err := r.startBerth(ctx, args...)
		if err != nil {
			return res, err
		}
		err = r.prepareS3(ctx, b, s3s, blob, repo, path, &direct, i == 0)
		if err == nil {
			err = r.compareS3(ctx, b, s3s, blob.Size, b.URL+path, direct, redirect, &res)
		}
		r.stopBerth(b, &err)
		if err != nil {
			return res, err
		}
	}
	return res, r.coldStorage(ctx, s3s, &res)
}

// clientCPUs is the CPU list of the load generator when the run pins ("" otherwise).
func (r *Runner) clientCPUs() string {
	if r.cpus == "" {
		return ""
	}
	return cmpStr(r.Cfg.ClientCPUs, "0")
}

// prepareS3 pushes blob into b (first only: later Berths share the bucket), makes the presigned direct
// URL (first only, valid for the run) and checks that both answer the blob's digest.
func (r *Runner) prepareS3(ctx context.Context, b *Berth, s3s *s3Server, blob *Content, repo, path string, direct *string, first bool) error {
	if err := b.CreateProject(ctx, "bench", 0, false); err != nil {
		return err
	}
	bd := blob.Digest()
	if err := b.PushBlob(ctx, repo, bd, blob.Reader(0), blob.Size); err != nil {
		return fmt.Errorf("push blob: %w", err)
	}
	if first {
		req, err := s3.NewPresignClient(s3s.client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s3s.bucket),
			Key: aws.String("warm/blobs/sha256/" + bd.Encoded()[:2] + "/" + bd.Encoded())}, s3.WithPresignExpires(2*time.Hour))
		if err != nil {
			return err
		}
		*direct = req.URL
	}
	for _, u := range []string{b.URL + path, *direct} {
		if err := verifyDigest(ctx, u, bd); err != nil {
			return err
		}
	}
	return nil
}

// compareS3 compares GETs of berthURL with GETs of direct: with redirects, recorded; without, the
// target comparison and then, on a pinned run, the same with the S3 server on Berth's CPUs.
func (r *Runner) compareS3(ctx context.Context, b *Berth, s3s *s3Server, size int64, berthURL, direct string, redirect bool, res *StorageResult) (err error) {
	load := func(u string, pid int) Load {
		return Load{URL: u, Conns: r.Cfg.BlobConns, WantBytes: size, ServerPid: pid}
	}
	compare := func(name, target string) (Comparison, error) {
		r.progress("storage: %s %s, %d connections", name, MiB(float64(size)), r.Cfg.BlobConns)
		return r.plan().Compare(ctx, name, load(berthURL, b.Pid()), load(direct, s3s.proc.Pid()), target)
	}
	if redirect {
		res.Redirect, err = compare("blob GET on S3 (redirect)", "")
		return err
	}
	if res.Warm, err = compare("blob GET on S3", ">= 0.8"); err != nil || r.cpus == "" {
		return err
	}
	if err := setProcCPUs(s3s.proc.Pid(), r.cpus); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, setProcCPUs(s3s.proc.Pid(), r.clientCPUs())) }()
	res.Shared, err = compare("blob GET on S3, S3 server on Berth's CPUs", "")
	return err
}

// coldStorage pulls ProxyRounds cold blobs through a proxy-cache project of a fresh Berth on the
// filesystem and of one on S3, alternating which goes first.
func (r *Runner) coldStorage(ctx context.Context, s3s *s3Server, res *StorageResult) (err error) {
	cfg := r.Cfg
	up, upURL, err := startChild(ctx, cfg.Self, r.dir, r.cpus, ModeUpstream)
	if err != nil {
		return err
	}
	defer r.stopProc(up, &err)
	upReg := &Registry{URL: upURL, Client: newClient()}
	defer upReg.Client.CloseIdleConnections()
	const repo = "lib/big"
	for i := range cfg.ProxyRounds {
		pulls := []func() error{}
		for _, onS3 := range []bool{false, true} {
			seed := uint64(1300 + 2*i)
			if onS3 {
				seed++
			}
			c := NewContent(seed, cfg.ProxyBlobSize)
			d := c.Digest()
			if err := upReg.RegisterBlob(ctx, BlobSpec{Digest: d, Seed: c.Seed, Size: c.Size}); err != nil {
				return err
			}
			pulls = append(pulls, func() error {
				var extra []string
				if onS3 {
					extra = s3s.berthArgs(fmt.Sprintf("cold-%d", i))
				}
				p, err := r.throughPull(ctx, upReg, upURL, repo, d, cfg.ProxyBlobSize, extra...)
				if onS3 {
					res.ColdS3 = append(res.ColdS3, p)
				} else {
					res.ColdFS = append(res.ColdFS, p)
				}
				if err == nil {
					r.progress("  storage cold round %d/%d (S3 %v): %s in %s (%s/s)", i+1, cfg.ProxyRounds, onS3,
						MiB(float64(p.Bytes)), p.Elapsed.Round(time.Millisecond), MiB(p.Throughput()))
				}
				return err
			})
		}
		if i%2 == 1 {
			pulls[0], pulls[1] = pulls[1], pulls[0]
		}
		for _, pull := range pulls {
			if err := pull(); err != nil {
				return err
			}
		}
	}
	return nil
}
