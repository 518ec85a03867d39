package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// running is a berth serve in this process, with the addresses it logged.
type running struct {
	addrs map[string]string // log message -> addr
	done  chan error
}

// startServeLogged runs serve with args plus a temp data dir and an ephemeral listen address, and returns once
// the listeners named in wait (log messages with an addr) are up. The server stops at the test's end.
func startServeLogged(t *testing.T, wait []string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	args = append([]string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--log-flush-interval", "0s",
		"--admin-password", "pw"}, args...)
	r := &running{addrs: map[string]string{}, done: make(chan error, 1)}
	go func() {
		err := serve(ctx, args, pw)
		_ = pw.Close()
		r.done <- err
	}()
	line := regexp.MustCompile(`msg="([^"]+)".* addr=(\S+)`)
	sc := bufio.NewScanner(pr)
	for len(r.addrs) < len(wait) && sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			for _, w := range wait {
				if m[1] == w {
					r.addrs[w] = m[2]
				}
			}
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.Len(t, r.addrs, len(wait), "serve stopped before logging its listeners")
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-r.done)
	})
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	r := startServeLogged(t, []string{"berth listening", "metrics listener serving /metrics"}, "--metrics-addr", "127.0.0.1:0")
	main, metricsAddr := "http://"+r.addrs["berth listening"], "http://"+r.addrs["metrics listener serving /metrics"]
	status, _ := get(t, main+"/api/v2.0/ping")
	require.Equal(t, http.StatusOK, status)
	status, _ = get(t, main+"/metrics")
	require.Equal(t, http.StatusNotFound, status, "the main listener no longer serves /metrics")
	status, body := get(t, metricsAddr+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.Contains(body, `berth_http_requests_total{code="200",method="GET",route="api"} 1`),
		"the metrics listener serves the main listener's metrics")
}

func TestMetricsOnTheMainListenerByDefault(t *testing.T) {
	r := startServeLogged(t, []string{"berth listening"})
	main := "http://" + r.addrs["berth listening"]
	status, _ := get(t, main+"/api/v2.0/ping")
	require.Equal(t, http.StatusOK, status)
	status, body := get(t, main+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.Contains(body, `berth_http_requests_total{code="200",method="GET",route="api"} 1`))
}

// TestStallTimeoutIsWired: with --stall-timeout, a request body that stops arriving is cut: the API
// answers that reading the body failed instead of waiting for the rest.
func TestStallTimeoutIsWired(t *testing.T) {
	r := startServeLogged(t, []string{"berth listening"}, "--stall-timeout", "200ms")
	conn, err := net.Dial("tcp", r.addrs["berth listening"])
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "POST /api/v2.0/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHc=\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"project_name\":")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute))) // a safety net against a hang
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, string(body))
	require.Contains(t, string(body), "reading the request body failed")
}
