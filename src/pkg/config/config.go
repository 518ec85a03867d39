// Package config loads Berth's settings from, in order of precedence, command-line flags, environment
// variables (BERTH_<NAME>) and a YAML file, over embedded defaults. Every setting has one name used in all
// three places: flag --database-url, variable BERTH_DATABASE_URL, YAML key database_url.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

	UpstreamDialTimeout   time.Duration
	UpstreamHeaderTimeout time.Duration
	UpstreamMaxConns      int
	BlobFillTimeout       time.Duration

	ReferrersCacheTTL       time.Duration
	ReferrersFreshness      time.Duration
	ReferrersPageSize       int
	ReferrersMaxPageSize    int
	ReferrersUpstreamPages  int
	ReferrersReprobe        time.Duration
	ReferrersPrefetchWorker int
	ReferrersNodeCache      time.Duration
	MemoryCacheBytes        int64

	MetricsAddr         string // "" = /metrics on the main listener
	MetricsProjectNames bool   // false = private projects are labelled "private"
	ReadHeaderTimeout   time.Duration
	IdleTimeout         time.Duration
	StallTimeout        time.Duration
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
		ReferrersCacheTTL:       7 * 24 * time.Hour,
		ReferrersFreshness:      30 * time.Second,
		ReferrersPageSize:       1000,
		ReferrersMaxPageSize:    10000,
		ReferrersUpstreamPages:  50,
		ReferrersReprobe:        10 * time.Minute,
		ReferrersPrefetchWorker: 4,
		ReferrersNodeCache:      time.Second,
		MemoryCacheBytes:        64 << 20,
		ReadHeaderTimeout:       30 * time.Second,
		IdleTimeout:             2 * time.Minute,
		StallTimeout:            time.Minute,
	}
}

// setting binds one name to one field.
type setting struct {
	name  string // flag name; env is BERTH_ + upper(snake); YAML key is snake
	usage string
	ptr   any // *string, *int, *int64, *time.Duration, *bool
}

func (c *Config) settings() []setting {
	return []setting{
		{"listen", "address to listen on", &c.Listen},
		{"data-dir", "directory for blobs, the SQLite database and keys", &c.DataDir},
		{"database-url", "metadata database: a SQLite file path or postgres://... (default <data-dir>/berth.db)", &c.DatabaseURL},
		{"redis-url", "Redis for the referrers cache and locks (redis://, rediss://); empty = in-process cache", &c.RedisURL},
		{"admin-password", "admin password; when empty on first start one is generated into <data-dir>/initial_admin_password", &c.AdminPassword},
		{"secret-key-file", "AES key file for registry credentials (default <data-dir>/secret.key)", &c.SecretKeyFile},
		{"log-level", "debug, info, warn or error", &c.LogLevel},
		{"log-format", "text or json", &c.LogFormat},
		{"log-flush-interval", "log lines are buffered and written this often (and whenever 64 KiB are pending); 0 writes every line at once", &c.LogFlushInterval},
		{"debug-addr", "address of a separate listener serving Go profiles (/debug/pprof/); empty = none. Keep it private", &c.DebugAddr},
		{"shutdown-timeout", "how long in-flight requests may take after SIGTERM", &c.ShutdownTimeout},
		{"upstream-dial-timeout", "connect timeout toward upstream registries", &c.UpstreamDialTimeout},
		{"upstream-header-timeout", "response-header timeout toward upstream registries", &c.UpstreamHeaderTimeout},
		{"upstream-max-conns", "maximum connections per upstream host", &c.UpstreamMaxConns},
		{"blob-fill-timeout", "how long one upstream blob download may take", &c.BlobFillTimeout},
		{"referrers-cache-ttl", "how long an upstream referrers answer is kept (served when the upstream fails)", &c.ReferrersCacheTTL},
		{"referrers-freshness", "how long a cached referrers answer is served without asking the upstream", &c.ReferrersFreshness},
		{"referrers-page-size", "referrers page size when the client sends no n", &c.ReferrersPageSize},
		{"referrers-max-page-size", "largest n a client may ask for", &c.ReferrersMaxPageSize},
		{"referrers-upstream-pages", "most upstream referrers pages followed for one list", &c.ReferrersUpstreamPages},
		{"referrers-reprobe", "how often an upstream without the referrers API is probed again", &c.ReferrersReprobe},
		{"referrers-prefetch-workers", "concurrent background referrers prefetches", &c.ReferrersPrefetchWorker},
		{"referrers-node-cache", "with Redis: how long a node reuses a referrers cache entry it read or wrote before reading Redis again (0 = every request reads Redis)", &c.ReferrersNodeCache},
		{"memory-cache-bytes", "size bound of the in-process cache used when no Redis is configured", &c.MemoryCacheBytes},
		{"metrics-addr", "address of a separate listener serving /metrics; when set, the main listener no longer serves it. Empty = /metrics on the main listener", &c.MetricsAddr},
		{"metrics-project-names", "label metrics with the names of private projects too (default: they are labelled \"private\"); only with a private metrics-addr", &c.MetricsProjectNames},
		{"read-header-timeout", "how long a client may take to send a request's headers", &c.ReadHeaderTimeout},
		{"idle-timeout", "how long an idle keep-alive connection is kept open", &c.IdleTimeout},
		{"stall-timeout", "a request body that delivers no byte, or a response (blob) the client does not read, for this long is cut", &c.StallTimeout},
	}
}

func envName(flagName string) string {
	return "BERTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func yamlKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// Load parses args (without the program and sub-command names) with env as the environment lookup.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("berth serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML configuration file (env BERTH_CONFIG)")
	raw := map[string]*string{}
	for _, s := range c.settings() {
		raw[s.name] = fs.String(s.name, "", fmt.Sprintf("%s (env %s, default %s)", s.usage, envName(s.name), show(s.ptr)))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	path := *configPath
	if !set["config"] {
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
	for _, s := range c.settings() {
		known[yamlKey(s.name)] = true
		var value string
		var have bool
		switch {
		case set[s.name]:
			value, have = *raw[s.name], true
		default:
			if v, ok := lookupEnv(envName(s.name)); ok {
				value, have = v, true
			} else if v, ok := fileValues[yamlKey(s.name)]; ok {
				value, have = v, true
			}
		}
		if !have {
			continue
		}
		if err := assign(s.ptr, value); err != nil {
			return c, fmt.Errorf("setting %s: %w", s.name, err)
		}
	}
	for k := range fileValues {
		if !known[k] {
			return c, fmt.Errorf("config file %s: unknown key %q", path, k)
		}
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if c.ReferrersPageSize <= 0 || c.ReferrersMaxPageSize < c.ReferrersPageSize {
		errs = append(errs, errors.New("referrers-page-size must be > 0 and <= referrers-max-page-size"))
	}
	if c.ReferrersFreshness < 0 || c.ReferrersCacheTTL < c.ReferrersFreshness {
		errs = append(errs, errors.New("referrers-freshness must be >= 0 and <= referrers-cache-ttl"))
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 || c.StallTimeout <= 0 {
		errs = append(errs, errors.New("read-header-timeout, idle-timeout and stall-timeout must be > 0"))
	}
	if c.ReferrersUpstreamPages <= 0 || c.UpstreamMaxConns <= 0 || c.ReferrersPrefetchWorker < 0 {
		errs = append(errs, errors.New("referrers-upstream-pages and upstream-max-conns must be > 0, referrers-prefetch-workers >= 0"))
	}
	return errors.Join(errs...)
}

// DatabaseURLOrDefault returns the database URL, defaulting to a SQLite file in the data dir.
func (c *Config) DatabaseURLOrDefault() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "berth.db")
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

func assign(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		*p = b
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

func show(ptr any) string {
	switch p := ptr.(type) {
	case *string:
		if *p == "" {
			return `""`
		}
		return *p
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *time.Duration:
		return p.String()
	case *bool:
		return strconv.FormatBool(*p)
	}
	return ""
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
