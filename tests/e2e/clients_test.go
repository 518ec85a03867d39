package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cmdTimeout bounds every client invocation.
const cmdTimeout = 3 * time.Minute

// fixedCreated pins the creation-time annotation oras and cosign would otherwise stamp, so digests are stable.
const fixedCreated = "2025-01-01T00:00:00Z"

// toolsDir returns the absolute folder holding the client binaries and reports any of names missing.
func toolsDir(t *testing.T, names ...string) string {
	t.Helper()
	dir, err := filepath.Abs(envOr("BERTH_TOOLS_BIN", filepath.Join("..", "..", ".tools", "bin")))
	require.NoError(t, err)
	var absent []string
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode()&0o111 == 0 {
			absent = append(absent, n)
		}
	}
	if len(absent) > 0 {
		missing(t, "client tools %v not in %s (BERTH_TOOLS_BIN; install with `make tools`)", absent, dir)
	}
	return dir
}

// clients runs the real client binaries against one server, as one user with a private home:
// HOME, DOCKER_CONFIG (oras, crane, cosign, notation credentials), XDG_CONFIG_HOME (notation keys and
// trust policy), XDG_CACHE_HOME and TUF_ROOT all live under a temp dir of the test.
type clients struct {
	t     *testing.T
	srv   *server
	tools string
	home  string
	work  string // working directory of every command; files to push are written here
	env   []string
}

func newClients(t *testing.T, srv *server, tools ...string) *clients {
	t.Helper()
	dir := toolsDir(t, tools...)
	home := t.TempDir()
	work := filepath.Join(home, "work")
	require.NoError(t, os.MkdirAll(work, 0o700))
	env := []string{
		"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"TUF_ROOT=" + filepath.Join(home, ".sigstore", "root"),
		"TMPDIR=" + os.TempDir(),
		"COSIGN_PASSWORD=", // unencrypted test key pair
		"NO_COLOR=1",
		"LANG=C.UTF-8",
	}
	return &clients{t: t, srv: srv, tools: dir, home: home, work: work, env: env}
}

// cmdResult is one finished client invocation, printable in failure messages.
type cmdResult struct {
	Args   []string
	Stdout string
	Stderr string
	Err    error
}

func (r cmdResult) String() string {
	return fmt.Sprintf("$ %s\nexit: %v\n--- stdout:\n%s\n--- stderr:\n%s",
		strings.Join(r.Args, " "), r.Err, clip(r.Stdout), clip(r.Stderr))
}

func clip(s string) string {
	const limit = 8192
	if len(s) > limit {
		return s[:limit] + "\n...(truncated)"
	}
	return s
}

// exec runs tool (a name in the tools folder) with args and optional stdin, bounded by cmdTimeout.
func (c *clients) exec(stdin string, tool string, args ...string) cmdResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.tools, tool), args...)
	cmd.Dir = c.work
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", cmdTimeout, err)
	}
	return cmdResult{Args: append([]string{tool}, args...), Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// must runs a command that has to succeed and returns its stdout.
func (c *clients) must(tool string, args ...string) string {
	c.t.Helper()
	r := c.exec("", tool, args...)
	require.NoError(c.t, r.Err, "command failed:\n%s", r)
	return r.Stdout
}

// mustFail runs a command that has to fail and returns the result.
func (c *clients) mustFail(tool string, args ...string) cmdResult {
	c.t.Helper()
	r := c.exec("", tool, args...)
	require.Error(c.t, r.Err, "command succeeded but must fail:\n%s", r)
	return r
}

// writeFile writes content into the working directory and returns its name.
func (c *clients) writeFile(name string, content []byte) string {
	c.t.Helper()
	p := filepath.Join(c.work, name)
	require.NoError(c.t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(c.t, os.WriteFile(p, content, 0o600))
	return name
}

func (c *clients) readFile(name string) []byte {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.work, name))
	require.NoError(c.t, err)
	return b
}

// loginOras stores admin credentials with `oras login` (in DOCKER_CONFIG, which cosign also reads).
func (c *clients) loginOras() {
	c.t.Helper()
	r := c.exec(c.srv.AdminPassword, "oras", "login", "--plain-http", "-u", adminUser, "--password-stdin", c.srv.Host)
	require.NoError(c.t, r.Err, "oras login:\n%s", r)
}

// loginCrane stores admin credentials with `crane auth login` (DOCKER_CONFIG).
func (c *clients) loginCrane() {
	c.t.Helper()
	r := c.exec(c.srv.AdminPassword, "crane", "auth", "login", c.srv.Host, "-u", adminUser, "--password-stdin")
	require.NoError(c.t, r.Err, "crane auth login:\n%s", r)
}

// loginNotation runs `notation login`. Without a native credential store notation only accepts
// credentials already present in DOCKER_CONFIG, so log in with oras first.
func (c *clients) loginNotation() {
	c.t.Helper()
	c.loginNotationAs(adminUser, c.srv.AdminPassword)
}

// descriptor is the JSON shape oras prints for push, attach and every node of discover.
type descriptor struct {
	Reference    string            `json:"reference"`
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
}

// discoverNode is one node of `oras discover --format json`: the subject, then its referrers (recursively).
type discoverNode struct {
	descriptor
	Referrers []discoverNode `json:"referrers"`
}

func decodeJSON[T any](t *testing.T, what string, out string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(out), &v), "%s: not the JSON expected:\n%s", what, out)
	return v
}

// orasPush pushes files (name:mediaType) as an artifact and returns its manifest descriptor.
func (c *clients) orasPush(ref, artifactType string, files ...string) descriptor {
	c.t.Helper()
	args := append([]string{"push", "--plain-http", "--format", "json",
		"--artifact-type", artifactType,
		"--annotation", "org.opencontainers.image.created=" + fixedCreated,
		ref}, files...)
	d := decodeJSON[descriptor](c.t, "oras push", c.must("oras", args...))
	require.True(c.t, strings.HasPrefix(d.Digest, "sha256:"), "oras push digest %q", d.Digest)
	return d
}

// orasAttach attaches a referrer of artifactType to subject (repo@digest) and returns its descriptor.
func (c *clients) orasAttach(subject, artifactType string, files ...string) descriptor {
	c.t.Helper()
	args := append([]string{"attach", "--plain-http", "--format", "json",
		"--artifact-type", artifactType,
		"--annotation", "org.opencontainers.image.created=" + fixedCreated,
		subject}, files...)
	d := decodeJSON[descriptor](c.t, "oras attach", c.must("oras", args...))
	require.True(c.t, strings.HasPrefix(d.Digest, "sha256:"), "oras attach digest %q", d.Digest)
	return d
}

// discover returns the direct referrers of subject, optionally filtered by artifact type.
func (c *clients) discover(subject, artifactType string) []discoverNode {
	c.t.Helper()
	args := []string{"discover", "--plain-http", "--format", "json", "--depth", "1"}
	if artifactType != "" {
		args = append(args, "--artifact-type", artifactType)
	}
	args = append(args, subject)
	root := decodeJSON[discoverNode](c.t, "oras discover", c.must("oras", args...))
	return root.Referrers
}

// tags lists a repository's tags with `crane ls`.
func (c *clients) tags(repo string) []string {
	c.t.Helper()
	out := strings.Fields(c.must("crane", "ls", repo))
	sort.Strings(out)
	return out
}

// requireNoFallbackTags fails when the repository has a referrers tag-schema tag (sha256-<hex>, with or
// without cosign's .sig/.att suffix): signatures must have gone through the referrers API.
func requireNoFallbackTags(t *testing.T, tags []string) {
	t.Helper()
	for _, tag := range tags {
		require.False(t, strings.HasPrefix(tag, "sha256-") || strings.HasPrefix(tag, "sha512-"),
			"referrers fallback tag %q was created (all tags: %v): the client did not use the referrers API", tag, tags)
	}
}

func artifactTypes(nodes []discoverNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ArtifactType)
	}
	sort.Strings(out)
	return out
}

func digests(nodes []discoverNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Digest)
	}
	sort.Strings(out)
	return out
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fallbackTag is the referrers tag-schema tag of a sha256 digest.
func fallbackTag(digest string) string { return strings.Replace(digest, ":", "-", 1) }
