package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/server"
)

// stallServer serves, under /v2/, handler with a stall timeout of 200ms, and reports what each request's
// handler returned on done.
func stallServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request) error) (addr string, done <-chan error) {
	t.Helper()
	ch := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ch <- handler(w, r) })
	srv := httptest.NewServer(server.New(h, http.NotFoundHandler(), metrics.New(), slog.New(slog.DiscardHandler),
		server.WithStallTimeout(200*time.Millisecond)))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), ch
}

// waitHandler returns what the handler returned. The minute is a safety net against a hang, far above
// the 200ms stall timeout; it measures nothing.
func waitHandler(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the handler is still blocked on a client that moves no bytes")
		return nil
	}
}

// TestStalledReaderIsCut: a client asks for a 64 MiB blob and reads nothing. The server's write stops
// with a deadline error (sendfile from a file and plain writes alike), the connection is closed, and
// the client, reading at last, gets less than the blob.
func TestStalledReaderIsCut(t *testing.T) {
	const size = 64 << 20
	file := filepath.Join(t.TempDir(), "blob")
	require.NoError(t, os.WriteFile(file, bytes.Repeat([]byte("z"), size), 0o600))
	cases := map[string]func(w http.ResponseWriter) error{
		"sendfile": func(w http.ResponseWriter) error {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			_, err = io.Copy(w, f)
			return err
		},
		"writes": func(w http.ResponseWriter) error {
			buf := bytes.Repeat([]byte("w"), 32<<10)
			for sent := 0; sent < size; sent += len(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, serve := range cases {
		t.Run(name, func(t *testing.T) {
			addr, done := stallServer(t, func(w http.ResponseWriter, _ *http.Request) error {
				w.Header().Set("Content-Length", "67108864")
				return serve(w)
			})
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			_, err = io.WriteString(conn, "GET /v2/big HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)

			err = waitHandler(t, done) // the client has not read a byte
			require.Error(t, err)
			require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the write hit the stall deadline: %v", err)

			require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute))) // a bug fails, not hangs
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			defer func() { _ = res.Body.Close() }()
			n, err := io.Copy(io.Discard, res.Body)
			require.Error(t, err, "the body ends short")
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the server closed the connection: %v", err)
			require.Less(t, n, int64(size))
		})
	}
}

// sendStalledBody connects to addr and sends request (method and path) announcing a body of 1000 bytes
// of which it sends ten, then nothing. The connection is closed when the test ends.
func sendStalledBody(t *testing.T, addr, request string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = io.WriteString(conn, request+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten b")
	require.NoError(t, err)
	return conn
}

// TestStalledBodyIsCut: a client announces a body and stops sending; the handler's read fails with a
// deadline error instead of waiting forever.
func TestStalledBodyIsCut(t *testing.T) {
	addr, done := stallServer(t, func(_ http.ResponseWriter, r *http.Request) error {
		_, err := io.ReadAll(r.Body)
		return err
	})
	sendStalledBody(t, addr, "PATCH /v2/a/blobs/uploads/x")
	err := waitHandler(t, done)
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "the read hit the stall deadline: %v", err)
}

// TestSteadyRequestsAreNotCut: a body that arrives and a response that is read in full, on one
// keep-alive connection, are not disturbed by the deadlines.
func TestSteadyRequestsAreNotCut(t *testing.T) {
	payload := bytes.Repeat([]byte("p"), 1<<20)
	addr, done := stallServer(t, func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, payload...))
		return err
	})
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for range 3 {
		res, err := c.Post("http://"+addr+"/v2/echo", "application/octet-stream", bytes.NewReader(payload))
		require.NoError(t, err)
		got, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.NoError(t, err)
		require.Len(t, got, 2<<20)
		require.NoError(t, <-done)
	}
}

// TestUnreadStalledBodyIsCut: a handler answers without reading a body that stopped arriving (a refused
// upload). net/http discards unread bodies before it answers, and without a deadline that wait never
// ends; with the stall deadline the server closes the connection.
func TestUnreadStalledBodyIsCut(t *testing.T) {
	addr, done := stallServer(t, func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	})
	conn := sendStalledBody(t, addr, "PUT /v2/a/manifests/x")
	require.NoError(t, waitHandler(t, done))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute))) // a safety net against a hang
	_, err := io.ReadAll(conn)
	require.NoError(t, err, "the server closed the connection")
}

// TestKeepAliveOutlivesTheStallTimeout: a keep-alive connection idle for longer than the stall timeout
// still serves its next request, here one whose answer is headers only (written by net/http after the
// handler, outside stallWriter): the deadlines of the previous request do not linger (net/http clears
// the write deadline after each request; stallBody clears the read deadline at the end of a body). The
// pause lets the old deadline pass; it synchronises nothing.
func TestKeepAliveOutlivesTheStallTimeout(t *testing.T) {
	addr, done := stallServer(t, func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		_, err := io.Copy(w, r.Body)
		return err
	})
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	reused := 0
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused++
		}
	}}
	send := func(method string, body io.Reader) (int, string) {
		req, err := http.NewRequest(method, "http://"+addr+"/v2/echo", body)
		require.NoError(t, err)
		res, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		require.NoError(t, err)
		got, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		require.NoError(t, err)
		require.NoError(t, waitHandler(t, done))
		return res.StatusCode, string(got)
	}
	status, got := send(http.MethodPut, bytes.NewReader([]byte("hello")))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "hello", got)
	time.Sleep(400 * time.Millisecond) // twice the stall timeout
	status, _ = send(http.MethodHead, nil)
	require.Equal(t, http.StatusNoContent, status)
	require.Equal(t, 1, reused, "the second request used the idle connection")
}
