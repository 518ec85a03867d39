package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runServe starts serve on a fresh port in dataDir, reads its log until the "berth listening" line and
// the lines that follow it up to shutdown, and returns them all.
func runServe(t *testing.T, dataDir string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := serve(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-flush-interval", "0s"}, w)
		_ = w.Close()
		done <- err
	}()
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "berth listening") {
			cancel() // everything logged after the bind is still read, up to the end of serve
		}
	}
	require.NoError(t, <-done)
	return lines
}

// TestGeneratedPasswordLoggedAfterListening: on first start the generated admin password is logged
// once, after the "listening" line; on the next start (the file exists) it is not logged again, and the
// file still holds the same password.
func TestGeneratedPasswordLoggedAfterListening(t *testing.T) {
	dir := t.TempDir()
	lines := runServe(t, dir)
	listening, generated := -1, -1
	for i, l := range lines {
		if strings.Contains(l, "berth listening") {
			listening = i
		}
		if strings.Contains(l, "generated the admin password") {
			require.Equal(t, -1, generated, "logged once")
			generated = i
		}
	}
	require.GreaterOrEqual(t, listening, 0, "%q", lines)
	require.Greater(t, generated, listening, "the password follows the listening line: %q", lines)
	b, err := os.ReadFile(filepath.Join(dir, "initial_admin_password"))
	require.NoError(t, err)
	password := strings.TrimSpace(string(b))
	require.Contains(t, lines[generated], "password="+password)

	for _, l := range runServe(t, dir) {
		require.NotContains(t, l, "generated the admin password", "the second start")
		require.NotContains(t, l, password)
	}
	again, err := os.ReadFile(filepath.Join(dir, "initial_admin_password"))
	require.NoError(t, err)
	require.Equal(t, string(b), string(again))
}
