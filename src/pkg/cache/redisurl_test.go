package cache

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		kind      string // single, cluster, failover
		addrs     []string
		db        int
		user, pw  string
		master    string
		sUser     string
		sPassword string
		tls       bool
	}
	tests := []struct {
		url  string
		want want
	}{
		{"redis://127.0.0.1:6379/0", want{kind: "single", addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost/3", want{kind: "single", addrs: []string{"localhost:6379"}, db: 3}},
		{"redis://u:p%40ss@h:1234/2?dial_timeout=2s", want{kind: "single", addrs: []string{"h:1234"}, db: 2, user: "u", pw: "p@ss"}},
		{"rediss://:secret@h:6380", want{kind: "single", addrs: []string{"h:6380"}, pw: "secret", tls: true}},
		{"redis://[::1]:6379", want{kind: "single", addrs: []string{"[::1]:6379"}}},
		{"unix:///run/redis.sock?db=1", want{kind: "single", addrs: []string{"/run/redis.sock"}, db: 1}},
		{"redis://h1:7000,h2:7001,h3", want{kind: "cluster", addrs: []string{"h1:7000", "h2:7001", "h3:6379"}}},
		{"rediss://u:p@h1:7000,h2:7001/0?pool_size=5", want{kind: "cluster", addrs: []string{"h1:7000", "h2:7001"}, user: "u", pw: "p", tls: true}},
		{"redis+cluster://h1:7000", want{kind: "cluster", addrs: []string{"h1:7000"}}},
		{"redis+sentinel://:mpw@s1:26379,s2,[::1]:5000/mymaster/2", want{
			kind: "failover", addrs: []string{"s1:26379", "s2:26379", "[::1]:5000"}, db: 2, pw: "mpw", master: "mymaster"}},
		{"redis-sentinel://s1/mymaster?sentinel_username=su&sentinel_password=spw&dial_timeout=1s", want{
			kind: "failover", addrs: []string{"s1:26379"}, master: "mymaster", sUser: "su", sPassword: "spw"}},
		{"rediss+sentinel://mu:mpw@s1:26380/m", want{
			kind: "failover", addrs: []string{"s1:26380"}, master: "m", user: "mu", pw: "mpw", tls: true}},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			target, err := parseRedisURL(tc.url)
			require.NoError(t, err)
			var got want
			switch {
			case target.single != nil:
				o := target.single
				require.True(t, o.ContextTimeoutEnabled)
				got = want{kind: "single", addrs: []string{o.Addr}, db: o.DB, user: o.Username, pw: o.Password, tls: o.TLSConfig != nil}
			case target.cluster != nil:
				o := target.cluster
				require.True(t, o.ContextTimeoutEnabled)
				got = want{kind: "cluster", addrs: o.Addrs, user: o.Username, pw: o.Password, tls: o.TLSConfig != nil}
			case target.failover != nil:
				o := target.failover
				require.True(t, o.ContextTimeoutEnabled)
				got = want{kind: "failover", addrs: o.SentinelAddrs, db: o.DB, user: o.Username, pw: o.Password,
					master: o.MasterName, sUser: o.SentinelUsername, sPassword: o.SentinelPassword, tls: o.TLSConfig != nil}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, u := range []string{
		"",
		"127.0.0.1:6379",
		"http://h:6379",
		"redis://h1,,h2",
		"redis://h1:notaport",
		"redis://h1:7000,h2:7001/3",           // cluster with a database
		"redis+sentinel://s1:26379",           // no master name
		"redis+sentinel://s1:26379/m/1/x",     // too many path segments
		"redis+sentinel://s1/m?master_name=x", // master given twice
		"redis://h:6379?no_such_option=1",
		"redis://user:hunter2@h:6379/notadb",
		"redis://user:hunter2@h1:6379,h2:6379?bogus=1",
		"redis+sentinel://user:hunter2@s1/m?bogus=1",
		"redis://user:hunter2@h:6379/%zz",
	} {
		t.Run(u, func(t *testing.T) {
			_, err := parseRedisURL(u)
			require.Error(t, err)
			require.NotContains(t, err.Error(), "hunter2", "errors never carry the password")
		})
	}
}
