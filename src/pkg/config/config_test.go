package config

import (
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
