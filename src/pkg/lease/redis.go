package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis grants leases in Redis, shared by every node using the same server and key prefix.
//
// A lease is the key <prefix>lease:{<name>} holding its token, with the lease's TTL; the fencing counter
// is <prefix>lease:{<name>}:fence, kept for FenceTTL after each grant. Both keys share one hash tag, so
// the scripts that touch both work on Redis Cluster too. Any redis.UniversalClient works.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

var _ Locker = (*Redis)(nil)

// NewRedis returns a Locker over client with every key prefixed by prefix (the Redis key prefix of the
// deployment, e.g. "berth:"). The caller keeps ownership of client.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// acquireScript takes KEYS[1] when free: it bumps the fence counter KEYS[2] (kept ARGV[2] ms) and stores
// the new token for ARGV[1] ms. It returns the token, or 0 when the lease is held.
var acquireScript = redis.NewScript(`if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
local t = redis.call("INCR", KEYS[2])
redis.call("PEXPIRE", KEYS[2], ARGV[2])
redis.call("SET", KEYS[1], t, "PX", ARGV[1])
return t`)

// renewScript sets KEYS[1]'s TTL to ARGV[2] ms while it holds token ARGV[1].
var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// releaseScript deletes KEYS[1] while it holds token ARGV[1].
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

func (r *Redis) key(name string) string { return r.prefix + "lease:{" + name + "}" }

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// TryAcquire implements Locker.
func (r *Redis) TryAcquire(ctx context.Context, name string, ttl time.Duration) (*Lease, bool, error) {
	if ttl <= 0 {
		return nil, false, errors.New("lease: ttl must be positive")
	}
	k := r.key(name)
	t, err := acquireScript.Run(ctx, r.client, []string{k, k + ":fence"}, ms(ttl), ms(FenceTTL)).Int64()
	if err != nil {
		return nil, false, fmt.Errorf("lease %s: acquire: %w", name, err)
	}
	if t == 0 {
		return nil, false, nil
	}
	return newLease(r, name, t, ttl), true, nil
}

func (r *Redis) renew(ctx context.Context, name string, token int64, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, r.client, []string{r.key(name)}, strconv.FormatInt(token, 10), ms(ttl)).Int64()
	return n == 1, err
}

func (r *Redis) held(ctx context.Context, name string, token int64) (bool, error) {
	v, err := r.client.Get(ctx, r.key(name)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil && v == strconv.FormatInt(token, 10), err
}

func (r *Redis) release(ctx context.Context, name string, token int64) (bool, error) {
	n, err := releaseScript.Run(ctx, r.client, []string{r.key(name)}, strconv.FormatInt(token, 10)).Int64()
	return n == 1, err
}
