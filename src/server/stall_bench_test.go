package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/server"
)

// BenchmarkStallGuard measures what the stall deadlines cost a small request on a keep-alive
// connection (the registry's hot path: manifest HEADs and GETs).
func BenchmarkStallGuard(b *testing.B) {
	body := make([]byte, 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	for _, bc := range []struct {
		name string
		opts []server.Option
	}{
		{"off", nil},
		{"on", []server.Option{server.WithStallTimeout(time.Minute)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(server.New(h, h, metrics.New(), slog.New(slog.DiscardHandler), bc.opts...))
			defer srv.Close()
			c := srv.Client()
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.Get(srv.URL + "/v2/a/manifests/v1")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
			}
		})
	}
}
