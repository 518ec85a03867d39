// Package config loads Berth's settings from, in order of precedence, command-line flags, environment
// variables (BERTH_<NAME>) and a YAML file, over embedded defaults. Every setting has one name used in all
// three places: flag --database-url, variable BERTH_DATABASE_URL, YAML key database_url.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the server's settings.
type Config struct {
	Listen        string
	DataDir       string
	DatabaseURL   string // "" = SQLite file <DataDir>/berth.db
	RedisURL      string // "" = in-process cache
	AdminPassword string // "" = generated on first start into <DataDir>/initial_admin_password
	SecretKeyFile string // "" = <DataDir>/secret.key
	LogLevel      string
	LogFormat     string
	DebugAddr     string // "" = no debug listener

	LogFlushInterval time.Duration // 0 = every line written at once

	ShutdownTimeout time.Duration
	// ShutdownDrainDelay is how long a node answers its health check with 503 (draining) after SIGTERM,
	// still serving, before it stops accepting requests: long enough for a load balancer to notice.
	ShutdownDrainDelay time.Duration

	UpstreamDialTimeout   time.Duration
	UpstreamHeaderTimeout time.Duration
	UpstreamMaxConns      int
	BlobFillTimeout       time.Duration
	// Amplification control for proxy-cache projects (package proxy, memo.go).
	ProxyNegativeCacheTTL time.Duration
	ProxyTagFreshness     time.Duration
	// GCGracePeriod is how old unreferenced content must be before garbage collection removes it.
	GCGracePeriod time.Duration

	ReferrersCacheTTL       time.Duration
	ReferrersFreshness      time.Duration
	ReferrersPageSize       int
	ReferrersMaxPageSize    int
	ReferrersUpstreamPages  int
	ReferrersReprobe        time.Duration
	ReferrersPrefetchWorker int
	ReferrersNodeCache      time.Duration
	MemoryCacheBytes        ByteSize
	// ReferrersDiskCacheMaxBytes bounds the persistent referrers cache in the data dir (no Redis); 0 = off.
	ReferrersDiskCacheMaxBytes ByteSize

	TLSCertFile     string // "" = plain HTTP
	TLSKeyFile      string
	TLSClientCAFile string // "" = no client certificates asked for

	MirrorDefaultProject string        // "" = mirror requests without ns need a project as the first segment
	RedisKeyPrefix       string        // prepended to every Redis key (cache values and locks)
	RedisOpTimeout       time.Duration // bound on each Redis cache call, after which it counts as a miss

	UpstreamReferrersMaxBytes   ByteSize // bytes read for one upstream referrers list, all pages together
	UpstreamReferrersMaxEntries int      // descriptors one upstream referrers list may hold

	MetricsAddr         string // "" = /metrics on the main listener
	MetricsProjectNames bool   // false = private projects are labelled "private"
	ReadHeaderTimeout   time.Duration
	IdleTimeout         time.Duration
	StallTimeout        time.Duration

	// Token service and robot accounts (docs/access.md).
	ExternalURL         string // "" = the token realm is derived from each request's scheme and Host
	TokenService        string
	TokenExpiry         time.Duration
	TokenSigningKeyFile string // "" = <DataDir>/token.key
	TokenVerifyKeyFiles string // comma-separated; "" = none
	RobotNamePrefix     string
	AuditLogRetention   time.Duration // 0 = audit entries are kept forever
	AuditLogPulls       bool
	PullTimeTracking    bool

	// Blob and manifest storage (package storage): file://<dir> or s3://<bucket>[/<prefix>].
	StorageURL            string // "" = file://<DataDir>/storage
	StorageS3Endpoint     string // "" = AWS, chosen by the region
	StorageS3Region       string // "" = the AWS chain's (AWS_REGION, shared config), else us-east-1
	StorageS3PathStyle    bool
	StorageS3AccessKey    string // "" (with the secret key) = the AWS credential chain
	StorageS3SecretKey    string
	StorageS3PartSize     ByteSize
	StorageRedirect       bool
	StorageRedirectExpiry time.Duration

	// Disk watermarks of the filesystem holding DataDir, in percent (package quota); 0 = off.
	StorageHighWatermark     int
	StorageLowWatermark      int
	StorageWatermarkInterval time.Duration
}

// Defaults returns the embedded defaults.
func Defaults() Config {
	return Config{
		Listen:                  "127.0.0.1:5000",
		DataDir:                 "./data",
		LogLevel:                "info",
		LogFormat:               "text",
		LogFlushInterval:        100 * time.Millisecond,
		ShutdownTimeout:         30 * time.Second,
		UpstreamDialTimeout:     10 * time.Second,
		UpstreamHeaderTimeout:   30 * time.Second,
		UpstreamMaxConns:        64,
		BlobFillTimeout:         30 * time.Minute,
		ProxyNegativeCacheTTL:   30 * time.Second,
		ProxyTagFreshness:       time.Minute,
		GCGracePeriod:           time.Hour,
		ReferrersCacheTTL:       7 * 24 * time.Hour,
		ReferrersFreshness:      30 * time.Second,
		ReferrersPageSize:       1000,
		ReferrersMaxPageSize:    10000,
		ReferrersUpstreamPages:  50,
		ReferrersReprobe:        10 * time.Minute,
		ReferrersPrefetchWorker: 4,
		ReferrersNodeCache:      time.Second,
		MemoryCacheBytes:        64 << 20,
		RedisKeyPrefix:          "berth:",
		RedisOpTimeout:          250 * time.Millisecond,

		ReferrersDiskCacheMaxBytes: 256 << 20,

		UpstreamReferrersMaxBytes:   4 << 20,
		UpstreamReferrersMaxEntries: 10000,

		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		StallTimeout:      time.Minute,

		TokenService:             "berth",
		TokenExpiry:              30 * time.Minute,
		RobotNamePrefix:          "robot$",
		AuditLogRetention:        90 * 24 * time.Hour,
		PullTimeTracking:         true,
		StorageS3PartSize:        16 << 20,
		StorageRedirectExpiry:    5 * time.Minute,
		StorageHighWatermark:     90,
		StorageLowWatermark:      80,
		StorageWatermarkInterval: time.Minute,
	}
}

// setting binds one name to one field. To add a setting: add the field to Config (its Go type is the
// setting's type: string, bool, int, int64, time.Duration or ByteSize), its default to Defaults, one
// line here, and its key to make/berth.yml. The usage says what the setting does and, for a string
// whose empty value means something, what empty means; --help adds the type, YAML key, variable and
// default. A default derived from another setting goes in derivedDefaults (help.go).
type setting struct {
	name  string // flag name; env is BERTH_ + upper(snake); YAML key is snake
	usage string
	ptr   any // *string, *bool, *int, *int64, *time.Duration, *ByteSize
}

func (c *Config) settings() []setting {
	return []setting{
		{"listen", "address to listen on", &c.Listen},
		{"data-dir", "directory for blobs, the SQLite database and keys", &c.DataDir},
		{"database-url", "metadata database: a SQLite file path, sqlite://<path>, postgres://... or postgresql://...", &c.DatabaseURL},
		{"redis-url", "Redis for the referrers cache and locks: redis://, rediss://, unix://, redis+cluster://, redis+sentinel:// or rediss+sentinel:// (several comma-separated hosts = Cluster); empty = the embedded cache (memory + <data-dir>/referrers-cache.db)", &c.RedisURL},
		{"admin-password", "password of the system administrator admin, applied at every start when set; when empty, the admin account is created on first start with one generated into <data-dir>/initial_admin_password", &c.AdminPassword},
		{"secret-key-file", "AES key file for registry credentials, generated on first start", &c.SecretKeyFile},
		{"log-level", "debug, info, warn or error", &c.LogLevel},
		{"log-format", "text or json", &c.LogFormat},
		{"log-flush-interval", "log lines are buffered and written this often (and whenever 64 KiB are pending); 0 writes every line at once", &c.LogFlushInterval},
		{"debug-addr", "address of a separate listener serving Go profiles (/debug/pprof/); empty = none. Keep it private", &c.DebugAddr},
		{"shutdown-timeout", "how long in-flight requests may take after SIGTERM", &c.ShutdownTimeout},
		{"shutdown-drain-delay", "after SIGTERM, how long the node keeps serving while /api/v2.0/health answers 503 (draining), so that a load balancer stops sending to it before in-flight requests are drained; 0 = drain at once", &c.ShutdownDrainDelay},
		{"upstream-dial-timeout", "connect timeout toward upstream registries", &c.UpstreamDialTimeout},
		{"upstream-header-timeout", "response-header timeout toward upstream registries", &c.UpstreamHeaderTimeout},
		{"upstream-max-conns", "maximum connections per upstream host", &c.UpstreamMaxConns},
		{"blob-fill-timeout", "how long one upstream blob download may take", &c.BlobFillTimeout},
		{"proxy-negative-cache-ttl", "how long an upstream \"not found\" for a manifest or blob is answered without asking again (0 = every miss asks)", &c.ProxyNegativeCacheTTL},
		{"proxy-tag-freshness", "how long a tag checked upstream is served from its local copy without asking again; per project: metadata proxy_tag_freshness_seconds (0 = every pull asks)", &c.ProxyTagFreshness},
		{"gc-grace-period", "garbage collection removes unreferenced blobs, links and (with delete_untagged) untagged artifacts only once they are this old; longer than a client takes from uploading a layer to pushing its manifest, and than the clock skew between nodes", &c.GCGracePeriod},
		{"referrers-cache-ttl", "how long an upstream referrers answer is kept (served when the upstream fails)", &c.ReferrersCacheTTL},
		{"referrers-freshness", "how long a cached referrers answer is served without asking the upstream", &c.ReferrersFreshness},
		{"referrers-page-size", "referrers page size when the client sends no n", &c.ReferrersPageSize},
		{"referrers-max-page-size", "largest n a client may ask for", &c.ReferrersMaxPageSize},
		{"referrers-upstream-pages", "most upstream referrers pages followed for one list", &c.ReferrersUpstreamPages},
		{"referrers-reprobe", "how often an upstream without the referrers API is probed again", &c.ReferrersReprobe},
		{"referrers-prefetch-workers", "concurrent background referrers prefetches", &c.ReferrersPrefetchWorker},
		{"referrers-node-cache", "with Redis: how long a node reuses a referrers cache entry it read or wrote before reading Redis again (0 = every request reads Redis)", &c.ReferrersNodeCache},
		{"memory-cache-bytes", "size bound of the in-process cache used when no Redis is configured", &c.MemoryCacheBytes},
		{"referrers-disk-cache-max-bytes", "without Redis: size bound of the referrers cache kept in <data-dir>/referrers-cache.db, so cached upstream answers survive a restart (LRU eviction); 0 = memory only", &c.ReferrersDiskCacheMaxBytes},
		{"tls-cert-file", "PEM certificate (chain) to serve HTTPS with; re-read when the file changes; empty = plain HTTP", &c.TLSCertFile},
		{"tls-key-file", "PEM private key of tls-cert-file", &c.TLSKeyFile},
		{"tls-client-ca-file", "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)", &c.TLSClientCAFile},
		{"mirror-default-project", "project serving registry-mirror requests without ns whose first path segment is no project (Docker's registry-mirrors); empty = none", &c.MirrorDefaultProject},
		{"redis-key-prefix", "prefix of every Redis key Berth writes; nodes that share a cache use the same one, separate deployments on one Redis different ones", &c.RedisKeyPrefix},
		{"redis-op-timeout", "bound on each Redis cache call (read, write, lock): a call that takes longer counts as a miss, so a Redis outage slows requests by at most this; too short on a loaded node and requests miss the cache and its locks", &c.RedisOpTimeout},
		{"upstream-referrers-max-bytes", "most bytes read for one upstream referrers list, all its pages together (more is an upstream error)", &c.UpstreamReferrersMaxBytes},
		{"upstream-referrers-max-entries", "most descriptors one upstream referrers list may hold (more is an upstream error)", &c.UpstreamReferrersMaxEntries},
		{"metrics-addr", "address of a separate listener serving /metrics; when set, the main listener no longer serves it. Empty = /metrics on the main listener", &c.MetricsAddr},
		{"metrics-project-names", "label metrics with the names of private projects too (otherwise they are labelled \"private\"); only with a private metrics-addr", &c.MetricsProjectNames},
		{"read-header-timeout", "how long a client may take to send a request's headers", &c.ReadHeaderTimeout},
		{"idle-timeout", "how long an idle keep-alive connection is kept open", &c.IdleTimeout},
		{"external-url", "URL clients reach Berth at (scheme://host[:port]); the Bearer challenge's token realm is <external-url>/service/token. Empty = derived from each request's scheme and Host", &c.ExternalURL},
		{"token-service", "service name of registry tokens: the challenge's service and the tokens' audience; nodes sharing keys use the same one", &c.TokenService},
		{"token-expiry", "lifetime of a registry bearer token", &c.TokenExpiry},
		{"token-signing-key-file", "PEM ECDSA P-256 key that signs registry tokens, generated with mode 0600 on first start; nodes behind one name share it", &c.TokenSigningKeyFile},
		{"token-verify-key-files", "comma-separated PEM files of further keys (public or private) whose tokens are accepted: the previous signing key during a rotation, other nodes' keys. Empty = none", &c.TokenVerifyKeyFiles},
		{"robot-name-prefix", "prefix of robot account names (Harbor's robot_name_prefix)", &c.RobotNamePrefix},
		{"stall-timeout", "a request body that delivers no byte, or a response (blob) the client does not read, for this long is cut", &c.StallTimeout},
		{"audit-log-retention", "audit log entries older than this are purged (hourly); 0 = kept forever", &c.AuditLogRetention},
		{"audit-log-pulls", "record manifest pulls in the audit log too (they are the bulk of the traffic)", &c.AuditLogPulls},
		{"pull-time-tracking", "record each manifest pull's time and count (batched); off: retention by last pull and eviction order use push (fill) times, and pull counts stay 0", &c.PullTimeTracking},
		{"storage-url", "where blobs and manifests are kept: file://<dir> or s3://<bucket>[/<prefix>] (several nodes share one bucket); empty = file://<data-dir>/storage", &c.StorageURL},
		{"storage-s3-endpoint", "S3 API base URL, e.g. https://minio.example:9000; empty = AWS, chosen by the region", &c.StorageS3Endpoint},
		{"storage-s3-region", "S3 region; empty = the AWS chain's (AWS_REGION, ~/.aws/config), else us-east-1", &c.StorageS3Region},
		{"storage-s3-path-style", "address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (most S3-compatible servers)", &c.StorageS3PathStyle},
		{"storage-s3-access-key", "S3 access key; empty = the AWS credential chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, web identity, instance role)", &c.StorageS3AccessKey},
		{"storage-s3-secret-key", "S3 secret key, with storage-s3-access-key", &c.StorageS3SecretKey},
		{"storage-s3-part-size", "size of S3 multipart parts (at least 5MiB): the memory one upload append holds", &c.StorageS3PartSize},
		{"storage-redirect", "answer blob GETs with a 307 to a presigned URL of the object store (S3 only; clients must reach it)", &c.StorageRedirect},
		{"storage-redirect-expiry", "how long a presigned blob URL is valid", &c.StorageRedirectExpiry},
		{"storage-high-watermark", "percent of the data dir's filesystem in use above which cached (pulled) content of proxy-cache projects is evicted, least recently pulled first, down to storage-low-watermark; pushed content is never evicted (0 = off)", &c.StorageHighWatermark},
		{"storage-low-watermark", "percent of the data dir's filesystem in use that a watermark eviction stops at", &c.StorageLowWatermark},
		{"storage-watermark-interval", "how often the data dir's filesystem is checked against storage-high-watermark", &c.StorageWatermarkInterval},
	}
}

func envName(flagName string) string {
	return "BERTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func yamlKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// Load parses args (without the program and sub-command names) with env as the environment lookup.
// Errors name the setting and where its value came from. Load prints nothing: for --help (-h) it
// returns flag.ErrHelp, and the caller prints Help.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Defaults()
	settings := c.settings()
	fs := flag.NewFlagSet("berth serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML configuration file (env BERTH_CONFIG)")
	flags := registerFlags(fs, settings)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	path := *configPath
	if !isSet(fs, "config") {
		if v, ok := lookupEnv("BERTH_CONFIG"); ok {
			path = v
		}
	}
	fileValues := map[string]string{}
	if path != "" {
		var err error
		if fileValues, err = readYAML(path); err != nil {
			return c, err
		}
	}
	known := map[string]bool{}
	from := map[string]string{}
	for _, s := range settings {
		known[yamlKey(s.name)] = true
		from[s.name] = "the default"
		value, have := "", false
		if f := flags[s.name]; f.set {
			value, have, from[s.name] = f.value, true, "--"+s.name
		} else if v, ok := lookupEnv(envName(s.name)); ok {
			value, have, from[s.name] = v, true, envName(s.name)
		} else if v, ok := fileValues[yamlKey(s.name)]; ok {
			value, have, from[s.name] = v, true, fmt.Sprintf("%s key %s", path, yamlKey(s.name))
		}
		if !have {
			continue
		}
		if err := assign(s.ptr, value); err != nil {
			return c, fmt.Errorf("setting %s (from %s): %w", s.name, from[s.name], err)
		}
	}
	for k := range fileValues {
		if !known[k] {
			return c, fmt.Errorf("config file %s: unknown key %q", path, k)
		}
	}
	return c, c.validate(from)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// validate checks the settings against each other. Each error names every setting involved, its value
// and where the value came from (from: setting name -> source).
func (c *Config) validate(from map[string]string) error {
	byName := map[string]any{}
	for _, s := range c.settings() {
		byName[s.name] = s.ptr
	}
	desc := func(name string) string { return fmt.Sprintf("%s %s (from %s)", name, show(byName[name]), from[name]) }
	var errs []error
	check := func(ok bool, format string, names ...string) {
		if !ok {
			args := make([]any, len(names))
			for i, n := range names {
				args[i] = desc(n)
			}
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Listen != "", "%s: must not be empty", "listen")
	check(c.TokenService != "", "%s: must not be empty", "token-service")
	check(c.TokenExpiry >= time.Minute && c.TokenExpiry <= 24*time.Hour, "%s: must be from 1m to 24h", "token-expiry")
	check(c.RobotNamePrefix != "" && !strings.ContainsAny(c.RobotNamePrefix, ":/ "), "%s: must be non-empty, without ':', '/' or spaces", "robot-name-prefix")
	check(c.ExternalURL == "" || validExternalURL(c.ExternalURL), "%s: must be an http:// or https:// URL without a path, query or fragment", "external-url")
	check(c.DataDir != "", "%s: must not be empty", "data-dir")
	check(c.ReferrersPageSize > 0, "%s: must be > 0", "referrers-page-size")
	check(c.ReferrersMaxPageSize >= c.ReferrersPageSize, "conflict: %s is larger than %s", "referrers-page-size", "referrers-max-page-size")
	check(c.ReferrersFreshness >= 0, "%s: must be >= 0", "referrers-freshness")
	check(c.ReferrersCacheTTL >= c.ReferrersFreshness, "conflict: %s is longer than %s (an entry would expire while still fresh)", "referrers-freshness", "referrers-cache-ttl")
	check(c.ReferrersUpstreamPages > 0, "%s: must be > 0", "referrers-upstream-pages")
	check(c.UpstreamMaxConns > 0, "%s: must be > 0", "upstream-max-conns")
	check(c.ReferrersPrefetchWorker >= 0, "%s: must be >= 0", "referrers-prefetch-workers")
	check((c.TLSCertFile == "") == (c.TLSKeyFile == ""), "conflict: %s and %s must be set together", "tls-cert-file", "tls-key-file")
	check(c.TLSClientCAFile == "" || c.TLSCertFile != "", "conflict: %s needs %s (and tls-key-file)", "tls-client-ca-file", "tls-cert-file")
	check(c.UpstreamReferrersMaxBytes > 0, "%s: must be > 0", "upstream-referrers-max-bytes")
	check(c.UpstreamReferrersMaxEntries > 0, "%s: must be > 0", "upstream-referrers-max-entries")
	check(c.ProxyNegativeCacheTTL >= 0, "%s: must be >= 0", "proxy-negative-cache-ttl")
	check(c.ProxyTagFreshness >= 0, "%s: must be >= 0", "proxy-tag-freshness")
	check(c.GCGracePeriod >= time.Second, "%s: must be at least 1s", "gc-grace-period")
	check(c.ReadHeaderTimeout > 0, "%s: must be > 0", "read-header-timeout")
	check(c.IdleTimeout > 0, "%s: must be > 0", "idle-timeout")
	check(c.StallTimeout > 0, "%s: must be > 0", "stall-timeout")
	check(c.AuditLogRetention >= 0, "%s: must be >= 0", "audit-log-retention")
	check(c.ShutdownDrainDelay >= 0, "%s: must be >= 0", "shutdown-drain-delay")
	check(c.RedisOpTimeout > 0, "%s: must be > 0", "redis-op-timeout")
	loc, err := c.Storage()
	check(err == nil, "%s: must be file://<dir> or s3://<bucket>[/<prefix>]", "storage-url")
	check(err != nil || loc.Bucket != "" || !c.StorageRedirect, "conflict: %s needs an s3:// %s", "storage-redirect", "storage-url")
	check((c.StorageS3AccessKey == "") == (c.StorageS3SecretKey == ""), "conflict: %s and %s must be set together", "storage-s3-access-key", "storage-s3-secret-key")
	check(c.StorageS3PartSize >= 5<<20, "%s: must be at least 5MiB (S3's smallest part)", "storage-s3-part-size")
	check(c.StorageRedirectExpiry > 0 && c.StorageRedirectExpiry <= 7*24*time.Hour, "%s: must be > 0 and at most 168h (S3's limit)", "storage-redirect-expiry")
	check(c.StorageHighWatermark >= 0 && c.StorageHighWatermark <= 100, "%s: must be between 0 and 100", "storage-high-watermark")
	check(c.StorageLowWatermark >= 0 && c.StorageLowWatermark <= 100, "%s: must be between 0 and 100", "storage-low-watermark")
	check(c.StorageHighWatermark == 0 || c.StorageLowWatermark < c.StorageHighWatermark,
		"conflict: %s must be below %s", "storage-low-watermark", "storage-high-watermark")
	check(c.StorageWatermarkInterval > 0, "%s: must be > 0", "storage-watermark-interval")
	return errors.Join(errs...)
}

// DatabaseURLOrDefault returns the database URL, defaulting to a SQLite file in the data dir.
func (c *Config) DatabaseURLOrDefault() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "berth.db")
}

// TokenSigningKeyFileOrDefault returns the token signing key path, defaulting to a file in the data dir.
func (c *Config) TokenSigningKeyFileOrDefault() string {
	if c.TokenSigningKeyFile != "" {
		return c.TokenSigningKeyFile
	}
	return filepath.Join(c.DataDir, "token.key")
}

// TokenVerifyKeyFileList splits TokenVerifyKeyFiles.
func (c *Config) TokenVerifyKeyFileList() []string {
	var out []string
	for _, f := range strings.Split(c.TokenVerifyKeyFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func validExternalURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		strings.Trim(u.Path, "/") == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// StorageLocation is a parsed storage-url: a directory, or an S3 bucket and key prefix.
type StorageLocation struct {
	Dir    string // file://
	Bucket string // s3://
	Prefix string
}

// Storage parses storage-url; empty means <data-dir>/storage.
func (c *Config) Storage() (StorageLocation, error) {
	if c.StorageURL == "" {
		return StorageLocation{Dir: filepath.Join(c.DataDir, "storage")}, nil
	}
	u, err := url.Parse(c.StorageURL)
	if err != nil {
		return StorageLocation{}, err
	}
	switch {
	case u.Scheme == "file" && (u.Host == "" || u.Host == "localhost") && u.Path != "" && u.RawQuery == "":
		return StorageLocation{Dir: u.Path}, nil
	case u.Scheme == "file" && u.Host != "" && u.Opaque == "" && u.RawQuery == "":
		// file://relative/dir: the host is the first path element.
		return StorageLocation{Dir: filepath.Join(u.Host, u.Path)}, nil
	case u.Scheme == "s3" && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "":
		return StorageLocation{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}, nil
	}
	return StorageLocation{}, fmt.Errorf("unsupported storage URL %q", c.StorageURL)
}

// SecretKeyFileOrDefault returns the secret key path, defaulting to a file in the data dir.
func (c *Config) SecretKeyFileOrDefault() string {
	if c.SecretKeyFile != "" {
		return c.SecretKeyFile
	}
	return filepath.Join(c.DataDir, "secret.key")
}

func readYAML(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(doc))
	for k, n := range doc {
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: key %q must be a scalar", path, k)
		}
		out[k] = n.Value
	}
	return out, nil
}

// Names lists every setting's flag name, for documentation tests.
func Names() []string {
	c := Defaults()
	var out []string
	for _, s := range c.settings() {
		out = append(out, s.name)
	}
	return out
}
