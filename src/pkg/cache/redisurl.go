package cache

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NewRedisClient builds a go-redis client from a URL. The forms accepted are:
//
//	redis://[user:password@]host[:port][/db][?option=value&...]         one server; rediss:// for TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N&...]                one server over a Unix socket
//	redis://[user:password@]host1[:port1],host2[:port2][,...][?...]      Redis Cluster seed nodes; rediss:// for TLS
//	redis+cluster://[user:password@]host[:port][,...][?...]              Redis Cluster, also with a single seed node
//	redis+sentinel://[user:password@]host1[:port1][,...]/master[/db][?...]   Redis Sentinel
//
// Ports default to 6379, and to 26379 for sentinels. For Sentinel (also rediss+sentinel:// for TLS, and
// redis-sentinel:// as an alias of redis+sentinel://) the path names the master set and, optionally, the
// database; as in Harbor's redis+sentinel URLs, user and password authenticate to the master, while the
// options sentinel_username and sentinel_password authenticate to the sentinels. Cluster URLs take no
// database (only "/0"). Options are go-redis's snake_case option names (dial_timeout=2s, pool_size=20,
// max_retries=1, ...); unknown options are an error.
//
// The client always has ContextTimeoutEnabled set, so a caller's context deadline bounds every call.
// Errors never contain the password.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	t, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch {
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster), nil
	case t.failover != nil:
		return redis.NewFailoverClient(t.failover), nil
	default:
		return redis.NewClient(t.single), nil
	}
}

// redisTarget is a parsed Redis URL: exactly one field is set.
type redisTarget struct {
	single   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// parseOptions parses raw with parse, keeping the URL out of its errors, and sets the option timeout
// points at (ContextTimeoutEnabled) so that a caller's context deadline bounds every call.
func parseOptions[O any](raw string, parse func(string) (*O, error), timeout func(*O) *bool) (*O, error) {
	opt, err := parse(raw)
	if err != nil {
		return nil, redactURLError(err)
	}
	*timeout(opt) = true
	return opt, nil
}

func parseRedisURL(rawURL string) (redisTarget, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return redisTarget{}, errors.New("cache: redis URL has no scheme (want redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://)")
	}
	var t redisTarget
	switch scheme {
	case "unix":
		opt, err := parseOptions(rawURL, redis.ParseURL, func(o *redis.Options) *bool { return &o.ContextTimeoutEnabled })
		if err != nil {
			return t, err
		}
		t.single = opt
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		base, _, clusterScheme := strings.Cut(scheme, "+")
		u, hosts, err := splitRedisURL(base, rest, "6379")
		if err != nil {
			return t, err
		}
		if !clusterScheme && len(hosts) == 1 {
			opt, err := parseOptions(rawURL, redis.ParseURL, func(o *redis.Options) *bool { return &o.ContextTimeoutEnabled })
			if err != nil {
				return t, err
			}
			t.single = opt
			return t, nil
		}
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return t, errors.New("cache: a Redis Cluster URL takes no database number")
		}
		u.Path = ""
		addExtraAddrs(u, hosts)
		opt, err := parseOptions(u.String(), redis.ParseClusterURL, func(o *redis.ClusterOptions) *bool { return &o.ContextTimeoutEnabled })
		if err != nil {
			return t, err
		}
		t.cluster = opt
	case "redis+sentinel", "rediss+sentinel", "redis-sentinel":
		base, _, _ := strings.Cut(scheme, "+")
		if scheme == "redis-sentinel" {
			base = "redis"
		}
		u, hosts, err := splitRedisURL(base, rest, "26379")
		if err != nil {
			return t, err
		}
		if err := toFailoverURL(u); err != nil {
			return t, err
		}
		addExtraAddrs(u, hosts)
		opt, err := parseOptions(u.String(), redis.ParseFailoverURL, func(o *redis.FailoverOptions) *bool { return &o.ContextTimeoutEnabled })
		if err != nil {
			return t, err
		}
		t.failover = opt
	default:
		return t, fmt.Errorf("cache: unsupported redis URL scheme %q", scheme)
	}
	return t, nil
}

// splitRedisURL parses "<userinfo>@<host>,<host>.../<path>?<query>" (rest of a URL after "://") into a
// URL with scheme base and the first host, and the full list of hosts, each with a port.
func splitRedisURL(base, rest, defaultPort string) (*url.URL, []string, error) {
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hostList := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	var hosts []string
	for h := range strings.SplitSeq(hostList, ",") {
		hp, err := withPort(h, defaultPort)
		if err != nil {
			return nil, nil, err
		}
		hosts = append(hosts, hp)
	}
	u, err := url.Parse(base + "://" + userinfo + hosts[0] + tail)
	if err != nil {
		return nil, nil, redactURLError(err)
	}
	return u, hosts, nil
}

// withPort returns host:port, adding defaultPort when h has none. h may be a bracketed IPv6 literal.
func withPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("cache: redis URL has an empty host")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" || port == "" {
			return "", fmt.Errorf("cache: redis URL host %q needs a host and a port", h)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("cache: redis URL host %q has an invalid port", h)
		}
		return h, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
		return "", fmt.Errorf("cache: redis URL host %q is malformed", h)
	}
	return net.JoinHostPort(host, defaultPort), nil
}

// addExtraAddrs adds every host after the first as an addr option, which go-redis's cluster and
// failover URL parsers read as further seed nodes or sentinels.
func addExtraAddrs(u *url.URL, hosts []string) {
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
}

// toFailoverURL rewrites a Harbor-style sentinel URL (userinfo = master credentials, path =
// /master[/db]) into go-redis's form (userinfo = sentinel credentials, master_name, username and
// password options, path = /db).
func toFailoverURL(u *url.URL) error {
	var segments []string
	for s := range strings.SplitSeq(strings.Trim(u.Path, "/"), "/") {
		if s != "" {
			segments = append(segments, s)
		}
	}
	if len(segments) < 1 || len(segments) > 2 {
		return errors.New("cache: a redis+sentinel URL needs the master name as its path: redis+sentinel://host:26379/mymaster[/db]")
	}
	q := u.Query()
	for _, name := range []string{"master_name", "username", "password"} {
		if q.Has(name) {
			return fmt.Errorf("cache: a redis+sentinel URL sets %s through the URL itself, not as an option", name)
		}
	}
	q.Set("master_name", segments[0])
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			q.Set("username", name)
		}
		if pw, ok := u.User.Password(); ok {
			q.Set("password", pw)
		}
	}
	u.User = nil
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	switch {
	case sentinelPassword != "":
		u.User = url.UserPassword(sentinelUser, sentinelPassword)
	case sentinelUser != "":
		u.User = url.User(sentinelUser)
	}
	u.Path = ""
	if len(segments) == 2 {
		u.Path = "/" + segments[1]
	}
	u.RawQuery = q.Encode()
	return nil
}

// redactURLError strips the URL (which may hold a password) from a *url.Error.
func redactURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("cache: redis URL: %w", err)
}
