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
		registry:     prometheus.NewRegistry(),
		HTTPRequests: counterVec("berth_http_requests_total", "HTTP requests by method, route and status code.", "method", "route", "code"),
		HTTPDuration: histogramVec("berth_http_request_duration_seconds", "HTTP request latency by method and route.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "method", "route"),
		ReferrersRequests: counterVec("berth_referrers_requests_total", "Referrers requests by project and cache result.", "project", "cache"),
		UpstreamRequests:  counterVec("berth_upstream_requests_total", "Requests to upstream registries by registry, operation and outcome.", "registry", "operation", "outcome"),
		UpstreamDuration: histogramVec("berth_upstream_request_duration_seconds", "Upstream request latency by registry and operation.",
			prometheus.DefBuckets, "registry", "operation"),
		CacheErrors:          counterVec("berth_cache_errors_total", "Cache errors by operation; each counts as a miss.", "operation"),
		CoalescedWaiters:     counterVec("berth_coalesced_waiters_total", "Requests that waited on another request's upstream fetch instead of sending their own.", "operation"),
		PrefetchOutcomes:     counterVec("berth_referrers_prefetch_total", "Background referrers prefetches by outcome.", "outcome"),
		UpstreamBytesFetched: counterVec("berth_upstream_blob_bytes_total", "Blob bytes read from upstream registries.", "registry"),
		StorageUsedBytes:     gauge("berth_storage_used_bytes", "Bytes used on the filesystem holding the data dir."),
		StorageCapacityBytes: gauge("berth_storage_capacity_bytes", "Size of the filesystem holding the data dir."),
		Evictions:            counterVec("berth_evictions_total", "Cached artifact groups evicted, by reason (quota: to make room in a proxy-cache project; watermark: the disk was above its high watermark).", "reason"),
		EvictedBytes:         counterVec("berth_evicted_bytes_total", "Blob and manifest bytes deleted from storage by eviction, by reason.", "reason"),
		QuotaPassthrough:     counter("berth_quota_passthrough_total", "Blobs and manifests of proxy-cache projects served without being stored because they did not fit in the project's quota."),
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

// counterVec is a counter vector named name, with help and the label names.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// histogramVec is a histogram vector named name, with help, the buckets and the label names.
func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// counter is a counter named name, with help.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// gauge is a gauge named name, with help.
func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}
