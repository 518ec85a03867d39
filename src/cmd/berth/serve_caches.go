package main

import (
	"context"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/server/api"
	"github.com/berth-registry/berth/src/server/console"
)

// openCaches builds the metrics and what is shared between nodes: the cache, console sessions and
// leases, in Redis when there is one, else in process and in the database.
func (n *node) openCaches(ctx context.Context) error {
	var metricsOpts []metrics.Option
	if n.cfg.MetricsProjectNames {
		metricsOpts = append(metricsOpts, metrics.WithProjectNames())
	}
	n.m = metrics.New(metricsOpts...)
	// Console sessions outlive a restart and are known to every node: in Redis when there is one (its TTL
	// ends them), else in the database.
	n.consoleSessions = n.store
	// Leases make background jobs run on one node at a time and a blob be filled by one node: in Redis
	// when nodes share one, else in process (a single node).
	n.leases = lease.NewLocal()
	if n.cfg.RedisURL != "" {
		return n.openRedis()
	}
	kv, err := embeddedCache(ctx, n.cfg, n.log.With("component", "cache"), n.m, n.h.clock())
	if err != nil {
		return err
	}
	n.kv = kv
	if c, ok := kv.(io.Closer); ok {
		n.onClose(func() { _ = c.Close() })
	}
	return nil
}

// openRedis connects to Redis and puts the cache, console sessions and leases there.
func (n *node) openRedis() error {
	redis.SetLogger(redisLogger{n.log.With("component", "redis")})
	client, err := cache.NewRedisClient(n.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	n.onClose(func() { _ = client.Close() })
	// Each Redis call is capped: a Redis outage slows requests by at most this much, never fails them.
	rc := cache.NewRedis(client, n.cfg.RedisKeyPrefix, cache.WithOpTimeout(n.cfg.RedisOpTimeout))
	n.kv = rc
	n.consoleSessions = console.NewCacheSessions(rc)
	n.leases = lease.NewRedis(client, n.cfg.RedisKeyPrefix)
	n.fillLeases = n.leases
	n.health = append(n.health, api.Component{Name: "redis", Checker: rc})
	return nil
}
