// Package s3test starts a real S3 server for tests: versitygw (v1.8.0, installed by
// scripts/install-tools.sh into .tools/bin) with its posix backend on a loopback port and a temporary
// directory, one server per call, stopped by the test's cleanup.
//
// The binary is BERTH_TOOLS_BIN/versitygw (default <module root>/.tools/bin/versitygw). When it is
// missing the test is skipped, except under CI=true, where it fails.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the posix backend's root: one directory per bucket
	Client    *s3.Client
}

// Binary returns the versitygw binary, skipping (or, under CI=true, failing) t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BERTH_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(moduleRoot(), ".tools", "bin")
	}
	bin := filepath.Join(dir, "versitygw")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 { //nolint:gosec // G703: the tools directory the test run names
		msg := fmt.Sprintf("versitygw not in %s (BERTH_TOOLS_BIN; install with scripts/install-tools.sh versitygw)", dir)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// Start runs versitygw until the test ends and waits until it answers. flags are extra global flags
// (e.g. "--keep-alive").
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	bin := Binary(t)
	srv := &Server{AccessKey: "berth-" + randHex(4), SecretKey: randHex(16), Region: "us-east-1", Dir: t.TempDir()}
	addr := freeAddr(t)
	srv.Endpoint = "http://" + addr
	args := append([]string{"--access", srv.AccessKey, "--secret", srv.SecretKey, "--region", srv.Region,
		"--port", addr, "--quiet"}, flags...)
	cmd := exec.Command(bin, append(args, "posix", srv.Dir)...) //nolint:gosec // G204: the pinned versitygw binary, test-only arguments
	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	})
	srv.Client = s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region, UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := srv.Client.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return srv
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw exited: %v\n%s", werr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw did not answer on %s: %v\n%s", addr, err, log)
		}
	}
}

// Bucket creates a bucket with a fresh name and returns the name.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "berth-" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
