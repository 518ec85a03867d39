package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// Child modes: the berthbench binary re-executed as a server of the run.
const (
	ModeBare     = "bare"     // a bare net/http server answering fixed paths with bytes held in memory
	ModeUpstream = "upstream" // the generator upstream (see UpstreamHandler)
	ModeGGCR     = "ggcr"     // go-containerregistry's registry with the referrers API, counting requests
)

// RunChild serves one child mode on 127.0.0.1:0 until SIGTERM, SIGINT or EOF on stdin, after printing
// its listen line on stdout. args are the mode's flags.
func RunChild(mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	routesPath := fs.String("routes", "", "bare: JSON file of routes to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var h http.Handler
	switch mode {
	case ModeBare:
		routes, err := loadRoutes(*routesPath)
		if err != nil {
			return err
		}
		h = BareHandler(routes)
	case ModeUpstream:
		h = NewUpstreamHandler()
	case ModeGGCR:
		h = NewCountingHandler(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
	default:
		return fmt.Errorf("unknown child mode %q", mode)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the parent closes our stdin when it stops us or dies
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("%s%s\n", listenPrefix, ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Route is one fixed answer of the bare server: the body is a file's bytes, or generated content
// (Seed, Size) when File is empty. Both are loaded into memory before the server listens, unless
// FromFile: then File is opened on every request and sent with http.ServeContent over the *os.File,
// which net/http sends with sendfile(2), as Berth sends a stored blob.
type Route struct {
	Path        string            `json:"path"`
	ContentType string            `json:"content_type"`
	Headers     map[string]string `json:"headers,omitempty"`
	File        string            `json:"file,omitempty"`
	FromFile    bool              `json:"from_file,omitempty"`
	Seed        uint64            `json:"seed,omitempty"`
	Size        int64             `json:"size,omitempty"`
}

func loadRoutes(path string) (map[string]bareRoute, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rs []Route
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("routes %s: %w", path, err)
	}
	out := make(map[string]bareRoute, len(rs))
	for _, r := range rs {
		var body []byte
		switch {
		case r.FromFile:
			if _, err := os.Stat(r.File); err != nil {
				return nil, err
			}
		case r.File != "":
			if body, err = os.ReadFile(r.File); err != nil {
				return nil, err
			}
		default:
			body = NewContent(r.Seed, r.Size).Bytes()
		}
		out[r.Path] = bareRoute{Route: r, body: body}
	}
	return out, nil
}

type bareRoute struct {
	Route
	body []byte
}

// BareHandler answers GET and HEAD of each route's exact path with its bytes, Content-Type,
// Content-Length and extra headers, and 404 otherwise: the least a server can do. A FromFile route is
// served by http.ServeContent over the opened file (sendfile; ranges and conditional requests too).
func BareHandler(routes map[string]bareRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := routes[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", rt.ContentType)
		for k, v := range rt.Headers {
			h.Set(k, v)
		}
		if rt.FromFile {
			serveFile(w, r, rt.File)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(rt.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(rt.body)
		}
	})
}

// serveFile sends the file at path with http.ServeContent over the *os.File (sendfile).
func serveFile(w http.ResponseWriter, r *http.Request, path string) {
	f, err := os.Open(path) // #nosec G304 -- a path of the run's own route file
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
