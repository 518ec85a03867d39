// Package metrics holds Berth's Prometheus collectors. main builds one Metrics on its own registry and
// passes it to the components that record; nothing here is global.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors Berth exports at /metrics.
type Metrics struct {
	registry     *prometheus.Registry
	projectNames bool

	HTTPRequests         *prometheus.CounterVec   // method, route, code
	HTTPDuration         *prometheus.HistogramVec // method, route
	ReferrersRequests    *prometheus.CounterVec   // project (ProjectLabel), cache (HIT|MISS|STALE|LOCAL|ERROR|OFF)
	UpstreamRequests     *prometheus.CounterVec   // registry, operation, outcome
	UpstreamDuration     *prometheus.HistogramVec // registry, operation
	CacheErrors          *prometheus.CounterVec   // operation (get|set|delete|lock|decode)
	CoalescedWaiters     *prometheus.CounterVec   // operation
	PrefetchOutcomes     *prometheus.CounterVec   // outcome
	UpstreamBytesFetched *prometheus.CounterVec   // registry
	StorageUsedBytes     prometheus.Gauge         // bytes used on the filesystem of the data dir
	StorageCapacityBytes prometheus.Gauge         // size of the filesystem of the data dir
	Evictions            *prometheus.CounterVec   // reason (quota|watermark): artifact groups evicted
	EvictedBytes         *prometheus.CounterVec   // reason: blob and manifest bytes deleted by eviction
	QuotaPassthrough     prometheus.Counter       // pulls served without being stored (over the quota)
}

// Option tunes New.
type Option func(*Metrics)

// WithProjectNames lets ProjectLabel name private projects too. Only for an operator who keeps the
// metrics endpoint private (metrics_addr): the names of private projects are not public information.
func WithProjectNames() Option { return func(m *Metrics) { m.projectNames = true } }

// PrivateProject is the project label of every private project unless WithProjectNames is set.
const PrivateProject = "private"

// ProjectLabel is the value of a "project" label: the project's name when it is public or the operator
// opted in with WithProjectNames, else PrivateProject. It allocates nothing.
func (m *Metrics) ProjectLabel(name string, public bool) string {
	if public || m.projectNames {
		return name
	}
	return PrivateProject
}

// New builds the collectors on a fresh registry, with the Go and process collectors.
func New(opts ...Option) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		ReferrersRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_referrers_requests_total", Help: "Referrers requests by project and cache result.",
		}, []string{"project", "cache"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_upstream_requests_total", Help: "Requests to upstream registries by registry, operation and outcome.",
		}, []string{"registry", "operation", "outcome"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_upstream_request_duration_seconds", Help: "Upstream request latency by registry and operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"registry", "operation"}),
		CacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_cache_errors_total", Help: "Cache errors by operation; each counts as a miss.",
		}, []string{"operation"}),
		CoalescedWaiters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_coalesced_waiters_total", Help: "Requests that waited on another request's upstream fetch instead of sending their own.",
		}, []string{"operation"}),
		PrefetchOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_referrers_prefetch_total", Help: "Background referrers prefetches by outcome.",
		}, []string{"outcome"}),
		UpstreamBytesFetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_upstream_blob_bytes_total", Help: "Blob bytes read from upstream registries.",
		}, []string{"registry"}),
		StorageUsedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_storage_used_bytes", Help: "Bytes used on the filesystem holding the data dir.",
		}),
		StorageCapacityBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_storage_capacity_bytes", Help: "Size of the filesystem holding the data dir.",
		}),
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_evictions_total", Help: "Cached artifact groups evicted, by reason (quota: to make room in a proxy-cache project; watermark: the disk was above its high watermark).",
		}, []string{"reason"}),
		EvictedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_evicted_bytes_total", Help: "Blob and manifest bytes deleted from storage by eviction, by reason.",
		}, []string{"reason"}),
		QuotaPassthrough: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_quota_passthrough_total", Help: "Blobs and manifests of proxy-cache projects served without being stored because they did not fit in the project's quota.",
		}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.ReferrersRequests, m.UpstreamRequests, m.UpstreamDuration,
		m.CacheErrors, m.CoalescedWaiters, m.PrefetchOutcomes, m.UpstreamBytesFetched,
		m.StorageUsedBytes, m.StorageCapacityBytes, m.Evictions, m.EvictedBytes, m.QuotaPassthrough,
	)
	for _, o := range opts {
		o(m)
	}
	return m
}

// Handler serves the collectors in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
