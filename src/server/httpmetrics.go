package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/src/pkg/metrics"
)

// httpMetrics records the per-request HTTP metrics, keeping the labelled children it has resolved: the
// label lookup of a vector costs more than the update itself, on every request. Only children of the
// standard methods and of real status codes are kept, so that clients cannot grow the set; anything
// else is looked up each time.
type httpMetrics struct {
	m        *metrics.Metrics
	children sync.Map // httpKey -> httpChildren
}

type httpKey struct {
	method, route string
	status        int
}

type httpChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (h *httpMetrics) observe(method, route string, status int, seconds float64) {
	k := httpKey{method, route, status}
	c, ok := h.children.Load(k)
	if !ok {
		fresh := httpChildren{
			requests: h.m.HTTPRequests.WithLabelValues(method, route, strconv.Itoa(status)),
			duration: h.m.HTTPDuration.WithLabelValues(method, route),
		}
		if !standardMethod(method) || status < 100 || status > 599 {
			fresh.requests.Inc()
			fresh.duration.Observe(seconds)
			return
		}
		c, _ = h.children.LoadOrStore(k, fresh)
	}
	ch := c.(httpChildren)
	ch.requests.Inc()
	ch.duration.Observe(seconds)
}

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}
