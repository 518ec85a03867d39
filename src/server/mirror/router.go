package mirror

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Source lists what a Table is built from: every project and every registry.
type Source interface {
	ListProjects(ctx context.Context, name string, offset, limit int) ([]*meta.Project, int64, error)
	ListRegistries(ctx context.Context, name string, offset, limit int) ([]*meta.Registry, int64, error)
}

// listPage is how many rows one List call reads while building a table.
const listPage = 500

// Router keeps a Table of the current projects for the request path. A lookup is an atomic load and a
// map read. The table is rebuilt by the first request after it expired (ttl) or was invalidated
// (Invalidate, which the Projects and Registries wrappers call on every change made through this
// process); other nodes' changes show within ttl. When a rebuild fails, the previous table keeps
// serving and the failure is logged; without any table the request fails.
type Router struct {
	src      Source
	deflt    string
	ttl      time.Duration
	log      *slog.Logger
	now      func() time.Time
	snapshot atomic.Pointer[snapshot]

	mu  sync.Mutex // serialises rebuilds
	gen atomic.Uint64
}

type snapshot struct {
	table   *Table
	expires time.Time
	gen     uint64 // the invalidation generation it was built in
}

// NewRouter returns a Router over src with defaultProject (may be "") and a table TTL.
func NewRouter(src Source, defaultProject string, ttl time.Duration, log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{src: src, deflt: defaultProject, ttl: ttl, log: log, now: time.Now}
}

// Route resolves a request with Table.Resolve on the current table. Without a default project, a
// request without ns needs no table at all.
func (r *Router) Route(ctx context.Context, ns, name string) (Route, error) {
	if ns == "" && r.deflt == "" {
		return Route{}, nil
	}
	t, err := r.Table(ctx)
	if err != nil {
		return Route{}, err
	}
	return t.Resolve(ns, name)
}

// Table returns the current table, rebuilding it when expired or invalidated.
func (r *Router) Table(ctx context.Context) (*Table, error) {
	if s := r.snapshot.Load(); s != nil && s.gen == r.gen.Load() && r.now().Before(s.expires) {
		return s.table, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot.Load()
	gen := r.gen.Load()
	if old != nil && old.gen == gen && r.now().Before(old.expires) {
		return old.table, nil // rebuilt while this request waited
	}
	t, err := r.build(ctx)
	if err != nil {
		if old != nil {
			r.log.WarnContext(ctx, "mirror: rebuilding the routing table failed; serving the previous one", "err", err)
			return old.table, nil
		}
		return nil, err
	}
	for _, c := range t.Conflicts() {
		r.log.WarnContext(ctx, "mirror: namespace claimed by several projects", "ns", c.Namespace, "serves", c.Winner, "ignored", c.Losers)
	}
	r.snapshot.Store(&snapshot{table: t, expires: r.now().Add(r.ttl), gen: gen})
	return t, nil
}

// Invalidate makes the next request rebuild the table.
func (r *Router) Invalidate() { r.gen.Add(1) }

func (r *Router) build(ctx context.Context) (*Table, error) {
	projects, err := listAll(ctx, r.src.ListProjects)
	if err != nil {
		return nil, err
	}
	list, err := listAll(ctx, r.src.ListRegistries)
	if err != nil {
		return nil, err
	}
	regs := make(map[int64]*meta.Registry, len(list))
	for _, g := range list {
		regs[g.ID] = g
	}
	return NewTable(projects, regs, r.deflt), nil
}

// listAll reads every row of a paged list, listPage rows at a time.
func listAll[T any](ctx context.Context, list func(ctx context.Context, name string, offset, limit int) ([]T, int64, error)) ([]T, error) {
	var out []T
	for off := 0; ; off += listPage {
		page, _, err := list(ctx, "", off, listPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < listPage {
			return out, nil
		}
	}
}

// Projects is a meta.ProjectStore that invalidates the Router after every write.
type Projects struct {
	Next   meta.ProjectStore
	Router *Router
}

// Registries is a meta.RegistryStore that invalidates the Router after every write.
type Registries struct {
	Next   meta.RegistryStore
	Router *Router
}

var (
	_ meta.ProjectStore  = Projects{}
	_ meta.RegistryStore = Registries{}
)

// written invalidates r after a write that returned err, and returns err.
func (r *Router) written(err error) error {
	r.Invalidate()
	return err
}

// created invalidates r after a create that returned id and err, and returns them.
func (r *Router) created(id int64, err error) (int64, error) {
	r.Invalidate()
	return id, err
}

// Reads go to Next; writes go to Next, then invalidate the Router.

// CreateProject implements meta.ProjectStore.
func (p Projects) CreateProject(ctx context.Context, pr *meta.Project) (int64, error) {
	return p.Router.created(p.Next.CreateProject(ctx, pr))
}

// UpdateProject implements meta.ProjectStore.
func (p Projects) UpdateProject(ctx context.Context, pr *meta.Project) error {
	return p.Router.written(p.Next.UpdateProject(ctx, pr))
}

// DeleteProject implements meta.ProjectStore.
func (p Projects) DeleteProject(ctx context.Context, id int64) error {
	return p.Router.written(p.Next.DeleteProject(ctx, id))
}

// GetProject implements meta.ProjectStore.
func (p Projects) GetProject(ctx context.Context, id int64) (*meta.Project, error) {
	return p.Next.GetProject(ctx, id)
}

// GetProjectByName implements meta.ProjectStore.
func (p Projects) GetProjectByName(ctx context.Context, name string) (*meta.Project, error) {
	return p.Next.GetProjectByName(ctx, name)
}

// ListProjects implements meta.ProjectStore.
func (p Projects) ListProjects(ctx context.Context, name string, offset, limit int) ([]*meta.Project, int64, error) {
	return p.Next.ListProjects(ctx, name, offset, limit)
}

// CreateRegistry implements meta.RegistryStore.
func (g Registries) CreateRegistry(ctx context.Context, r *meta.Registry) (int64, error) {
	return g.Router.created(g.Next.CreateRegistry(ctx, r))
}

// UpdateRegistry implements meta.RegistryStore.
func (g Registries) UpdateRegistry(ctx context.Context, r *meta.Registry) error {
	return g.Router.written(g.Next.UpdateRegistry(ctx, r))
}

// DeleteRegistry implements meta.RegistryStore.
func (g Registries) DeleteRegistry(ctx context.Context, id int64) error {
	return g.Router.written(g.Next.DeleteRegistry(ctx, id))
}

// GetRegistry implements meta.RegistryStore.
func (g Registries) GetRegistry(ctx context.Context, id int64) (*meta.Registry, error) {
	return g.Next.GetRegistry(ctx, id)
}

// ListRegistries implements meta.RegistryStore.
func (g Registries) ListRegistries(ctx context.Context, name string, offset, limit int) ([]*meta.Registry, int64, error) {
	return g.Next.ListRegistries(ctx, name, offset, limit)
}
