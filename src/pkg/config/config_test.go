package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "berth.yml")
	require.NoError(t, os.WriteFile(file, []byte("listen: 127.0.0.1:7000\ndata_dir: /from/file\nredis_url: redis://file\nreferrers_freshness: 1m\n"), 0o600))

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*testing.T, Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			require.Equal(t, "127.0.0.1:5000", c.Listen)
			require.Equal(t, "./data", c.DataDir)
			require.Equal(t, 7*24*time.Hour, c.ReferrersCacheTTL)
			require.Equal(t, "berth:", c.RedisKeyPrefix)
			require.Equal(t, filepath.Join("./data", "berth.db"), c.DatabaseURLOrDefault())
		}},
		{"file", []string{"--config", file}, nil, func(t *testing.T, c Config) {
			require.Equal(t, "127.0.0.1:7000", c.Listen)
			require.Equal(t, time.Minute, c.ReferrersFreshness)
		}},
		{"env over file", []string{"--config", file}, map[string]string{"BERTH_LISTEN": "127.0.0.1:8000", "BERTH_REDIS_KEY_PREFIX": "bench:1:"}, func(t *testing.T, c Config) {
			require.Equal(t, "127.0.0.1:8000", c.Listen)
			require.Equal(t, "bench:1:", c.RedisKeyPrefix)
			require.Equal(t, "/from/file", c.DataDir)
		}},
		{"flag over env", []string{"--listen", "127.0.0.1:9000"}, map[string]string{"BERTH_LISTEN": "127.0.0.1:8000", "BERTH_CONFIG": file}, func(t *testing.T, c Config) {
			require.Equal(t, "127.0.0.1:9000", c.Listen)
			require.Equal(t, "redis://file", c.RedisURL)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, env(tc.env))
			require.NoError(t, err)
			tc.want(t, c)
		})
	}
}

func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("no_such_key: 1\n"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		msg  string
	}{
		{"unknown key", []string{"--config", bad}, nil, "unknown key"},
		{"bad duration", []string{"--referrers-cache-ttl", "forever"}, nil, "referrers-cache-ttl"},
		{"bad int env", nil, map[string]string{"BERTH_REFERRERS_PAGE_SIZE": "x"}, "referrers-page-size"},
		{"freshness over ttl", []string{"--referrers-freshness", "9h", "--referrers-cache-ttl", "1h"}, nil, "freshness"},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yml")}, nil, "config file"},
		{"tls cert without key", []string{"--tls-cert-file", "c.pem"}, nil, "must be set together"},
		{"tls client CA without cert", nil, map[string]string{"BERTH_TLS_CLIENT_CA_FILE": "ca.pem"}, "tls-client-ca-file"},
		{"bad bool", []string{"--metrics-project-names=sometimes"}, nil, "metrics-project-names"},
		{"zero stall timeout", []string{"--stall-timeout", "0s"}, nil, "stall-timeout"},
		{"high watermark over 100", []string{"--storage-high-watermark", "101"}, nil, "storage-high-watermark"},
		{"negative low watermark", []string{"--storage-low-watermark", "-1"}, nil, "storage-low-watermark"},
		{"low watermark not below high", []string{"--storage-high-watermark", "70", "--storage-low-watermark", "70"}, nil, "conflict: storage-low-watermark 70"},
		{"zero watermark interval", []string{"--storage-watermark-interval", "0s"}, nil, "storage-watermark-interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestSecuritySettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	require.NoError(t, err)
	require.Equal(t, "", c.MetricsAddr)
	require.False(t, c.MetricsProjectNames)
	require.Equal(t, time.Minute, c.StallTimeout)
	c, err = Load([]string{"--metrics-addr", "127.0.0.1:9090", "--stall-timeout", "5s"},
		env(map[string]string{"BERTH_METRICS_PROJECT_NAMES": "true", "BERTH_READ_HEADER_TIMEOUT": "3s"}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9090", c.MetricsAddr)
	require.True(t, c.MetricsProjectNames)
	require.Equal(t, 5*time.Second, c.StallTimeout)
	require.Equal(t, 3*time.Second, c.ReadHeaderTimeout)
}

// TestTemplateListsEverySetting keeps make/berth.yml complete.
func TestTemplateListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../../make/berth.yml")
	require.NoError(t, err)
	for _, n := range Names() {
		require.True(t, strings.Contains(string(b), yamlKey(n)+":"), "make/berth.yml lacks %s", yamlKey(n))
	}
}

func TestStorageSettings(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want StorageLocation
	}{
		{"", StorageLocation{Dir: filepath.Join("./data", "storage")}},
		{"file:///srv/berth/blobs", StorageLocation{Dir: "/srv/berth/blobs"}},
		{"file://blobs/here", StorageLocation{Dir: "blobs/here"}},
		{"s3://bucket", StorageLocation{Bucket: "bucket"}},
		{"s3://bucket/a/b/", StorageLocation{Bucket: "bucket", Prefix: "a/b"}},
	} {
		c, err := Load([]string{"--storage-url", tc.url}, env(nil))
		require.NoError(t, err, tc.url)
		got, err := c.Storage()
		require.NoError(t, err)
		require.Equal(t, tc.want, got, tc.url)
	}
	c, err := Load([]string{"--storage-url", "s3://b", "--storage-redirect", "--storage-s3-part-size", "32MiB"},
		env(map[string]string{"BERTH_STORAGE_S3_ACCESS_KEY": "a", "BERTH_STORAGE_S3_SECRET_KEY": "s"}))
	require.NoError(t, err)
	require.True(t, c.StorageRedirect)
	require.Equal(t, ByteSize(32<<20), c.StorageS3PartSize)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--storage-url", "gs://bucket"}, "storage-url"},
		{[]string{"--storage-url", "s3://"}, "storage-url"},
		{[]string{"--storage-url", "s3://key:secret@bucket"}, "storage-url"},
		{[]string{"--storage-redirect"}, "storage-redirect"},
		{[]string{"--storage-url", "s3://b", "--storage-s3-access-key", "a"}, "must be set together"},
		{[]string{"--storage-url", "s3://b", "--storage-s3-part-size", "1MiB"}, "storage-s3-part-size"},
		{[]string{"--storage-url", "s3://b", "--storage-redirect", "--storage-redirect-expiry", "0s"}, "storage-redirect-expiry"},
	} {
		_, err := Load(tc.args, env(nil))
		require.Error(t, err, tc.args)
		require.Contains(t, err.Error(), tc.msg)
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  string
	}{
		{"0", 0, ""},
		{"67108864", 64 << 20, ""},
		{"64MiB", 64 << 20, ""},
		{"64 MiB", 64 << 20, ""},
		{"512KiB", 512 << 10, ""},
		{"2GiB", 2 << 30, ""},
		{"1TiB", 1 << 40, ""},
		{"1MB", 1_000_000, ""},
		{"10kB", 10_000, ""},
		{"10KB", 10_000, ""},
		{"100B", 100, ""},
		{"", 0, "invalid byte size"},
		{"MiB", 0, "invalid byte size"},
		{"-1MiB", 0, "invalid byte size"},
		{"1.5MiB", 0, "invalid byte size"},
		{"64mb", 0, "invalid byte size"},
		{"64XB", 0, "invalid byte size"},
		{"9999999TiB", 0, "too large"},
	} {
		got, err := ParseByteSize(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for b, want := range map[ByteSize]string{0: "0", 64 << 20: "64MiB", 256 << 20: "256MiB", 1536: "1536", 1 << 30: "1GiB", 1000: "1000", 3 << 10: "3KiB"} {
		require.Equal(t, want, b.String())
		back, err := ParseByteSize(want)
		require.NoError(t, err)
		require.Equal(t, b, back, "String reads back")
	}
}

// TestTypedSettings: every type is parsed from each source, units included.
func TestTypedSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "berth.yml")
	require.NoError(t, os.WriteFile(file, []byte("memory_cache_bytes: 32MiB\nreferrers_disk_cache_max_bytes: 1GB\nupstream_max_conns: 8\n"), 0o600))
	c, err := Load([]string{"--config", file, "--referrers-reprobe", "90s"}, env(map[string]string{"BERTH_REFERRERS_PAGE_SIZE": "10"}))
	require.NoError(t, err)
	require.Equal(t, ByteSize(32<<20), c.MemoryCacheBytes)
	require.Equal(t, ByteSize(1_000_000_000), c.ReferrersDiskCacheMaxBytes)
	require.Equal(t, 8, c.UpstreamMaxConns)
	require.Equal(t, 90*time.Second, c.ReferrersReprobe)
	require.Equal(t, 10, c.ReferrersPageSize)

	c, err = Load([]string{"--memory-cache-bytes=67108864"}, env(nil))
	require.NoError(t, err)
	require.Equal(t, ByteSize(64<<20), c.MemoryCacheBytes, "a plain integer is bytes")
}

// TestErrorsNameSettingAndSource: a bad value or a conflict names the settings, their values and where
// each came from.
func TestErrorsNameSettingAndSource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "berth.yml")
	require.NoError(t, os.WriteFile(file, []byte("referrers_cache_ttl: 1h\nmemory_cache_bytes: lots\n"), 0o600))
	okFile := filepath.Join(t.TempDir(), "ok.yml")
	require.NoError(t, os.WriteFile(okFile, []byte("referrers_cache_ttl: 1h\n"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"bad unit on a flag", []string{"--memory-cache-bytes", "64Mb"}, nil,
			[]string{`invalid value "64Mb" for flag -memory-cache-bytes`, "invalid byte size"}},
		{"bad duration in env", nil, map[string]string{"BERTH_SHUTDOWN_TIMEOUT": "soon"},
			[]string{"shutdown-timeout", "from BERTH_SHUTDOWN_TIMEOUT", `invalid duration "soon"`}},
		{"bad value in file", []string{"--config", file}, nil,
			[]string{"memory-cache-bytes", "key memory_cache_bytes", `invalid byte size "lots"`}},
		{"flag given twice", []string{"--listen", "a:1", "--listen", "b:2"}, nil,
			[]string{"-listen", "given twice"}},
		{"freshness over ttl across sources", []string{"--config", okFile, "--referrers-freshness", "2h"}, nil,
			[]string{"conflict", "referrers-freshness 2h (from --referrers-freshness)", "referrers-cache-ttl 1h (from " + okFile + " key referrers_cache_ttl)"}},
		{"page size over max", nil, map[string]string{"BERTH_REFERRERS_PAGE_SIZE": "20000"},
			[]string{"conflict", "referrers-page-size 20000 (from BERTH_REFERRERS_PAGE_SIZE)", "referrers-max-page-size 10000 (from the default)"}},
		{"two errors at once", []string{"--upstream-max-conns", "0", "--referrers-prefetch-workers", "-1"}, nil,
			[]string{"upstream-max-conns 0 (from --upstream-max-conns): must be > 0", "referrers-prefetch-workers -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestHelp: one line per setting with its type, YAML key and variable, and exactly one default.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	Help(&out)
	help := out.String()
	c := Defaults()
	for _, s := range c.settings() {
		i := strings.Index(help, "  --"+s.name+" ")
		require.GreaterOrEqual(t, i, 0, s.name)
		block := help[i:]
		block = block[:strings.Index(block[1:], "\n  --")+1]
		head := strings.SplitN(block, "\n", 2)[0]
		require.Contains(t, head, " "+typeName(s.ptr)+" ", s.name)
		require.Contains(t, head, "yaml: "+yamlKey(s.name), s.name)
		require.Contains(t, head, "env: "+envName(s.name), s.name)
		require.LessOrEqual(t, strings.Count(block, "(default"), 1, "%s shows one default: %s", s.name, block)
	}
	for name, want := range map[string]string{
		"database-url": "(default <data-dir>/berth.db)", "secret-key-file": "(default <data-dir>/secret.key)",
		"memory-cache-bytes": "(default 64MiB)", "referrers-disk-cache-max-bytes": "(default 256MiB)",
		"referrers-cache-ttl": "(default 168h)", "blob-fill-timeout": "(default 30m)",
	} {
		require.Regexp(t, `--`+name+` [^\n]*\n[^\n]*`+regexpQuote(want), help)
	}
	for _, scheme := range []string{"sqlite://", "postgres://", "postgresql://"} {
		require.Regexp(t, `--database-url [^\n]*\n[^\n]*`+regexpQuote(scheme), help)
	}
	for _, scheme := range []string{"redis://", "rediss://", "unix://", "redis+cluster://", "redis+sentinel://"} {
		require.Regexp(t, `--redis-url [^\n]*\n[^\n]*`+regexpQuote(scheme), help)
	}

	_, err := Load([]string{"-h"}, env(nil))
	require.True(t, errors.Is(err, flag.ErrHelp))
}

func regexpQuote(s string) string {
	return strings.NewReplacer(`(`, `\(`, `)`, `\)`, `+`, `\+`, `.`, `\.`, `<`, `<`).Replace(s)
}

// TestBoolFlag: a boolean setting is given as --flag alone, --flag=false, or true/false elsewhere.
func TestBoolFlag(t *testing.T) {
	var on bool
	settings := []setting{{"feature", "a switch", &on}}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	flags := registerFlags(fs, settings)
	require.NoError(t, fs.Parse([]string{"--feature"}))
	require.True(t, flags["feature"].set)
	require.NoError(t, assign(&on, flags["feature"].value))
	require.True(t, on)
	require.NoError(t, assign(&on, "false"))
	require.False(t, on)
	require.ErrorContains(t, assign(&on, "yes please"), "invalid boolean")
	var out bytes.Buffer
	writeHelp(&out, settings)
	require.Contains(t, out.String(), "--feature bool    yaml: feature    env: BERTH_FEATURE")
	require.Contains(t, out.String(), "a switch (default false)")
}

// TestTemplateDefaultsAreTheDefaults: the value make/berth.yml shows for each key, loaded as a config
// file, gives exactly the embedded defaults (the template and --help agree on one default).
func TestTemplateDefaultsAreTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../../../make/berth.yml")
	require.NoError(t, err)
	known := map[string]bool{}
	for _, n := range Names() {
		known[yamlKey(n)] = true
	}
	var keys []string
	var doc strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		kv, ok := strings.CutPrefix(line, "# ")
		key, _, hasColon := strings.Cut(kv, ": ")
		if !ok || !hasColon || !known[key] {
			continue
		}
		keys = append(keys, key)
		doc.WriteString(kv + "\n")
	}
	require.Len(t, keys, len(Names()), "one commented key per setting: %v", keys)
	file := filepath.Join(t.TempDir(), "defaults.yml")
	require.NoError(t, os.WriteFile(file, []byte(doc.String()), 0o600))
	c, err := Load([]string{"--config", file}, env(nil))
	require.NoError(t, err)
	require.Equal(t, Defaults(), c)
}
