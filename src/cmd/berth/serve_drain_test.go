package main

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/config"
)

// TestServeDrains: on shutdown the node first answers its health check with 503 while it still serves
// other requests, for shutdown-drain-delay, and only then stops.
func TestServeDrains(t *testing.T) {
	const delay = 1500 * time.Millisecond
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--admin-password", "Test-" + rand.Text()[:12],
		"--log-level", "warn", "--shutdown-drain-delay", delay.String()}
	cfg, err := config.Load(args, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serveConfig(ctx, cfg, io.Discard, hooks{listening: func(a net.Addr) { addr <- a }}) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	}
	status := func(path string) int {
		res, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, status("/api/v2.0/health"))

	stopped := time.Now()
	cancel()
	require.Eventually(t, func() bool { return status("/api/v2.0/health") == http.StatusServiceUnavailable },
		delay, 10*time.Millisecond, "health answers 503 while draining")
	require.Equal(t, http.StatusOK, status("/api/v2.0/ping"), "requests are still served while draining")
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, time.Since(stopped), delay, "the node served for the whole drain delay")
	require.Zero(t, status("/api/v2.0/ping"), "stopped after the drain")
}
