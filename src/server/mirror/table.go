// Package mirror routes registry-mirror requests to projects, so that one Berth endpoint can be the
// mirror of several upstream registries for container runtimes (docs/mirror.md).
//
// Runtimes name the registry they want in two ways:
//   - containerd appends ?ns=<registry host> to every request it sends to a mirror host that is not the
//     image's own registry (the distribution-spec's "Registry Proxying" section describes ns);
//   - Docker's registry-mirrors, and a registries.conf mirror without a project prefix, send the
//     upstream's repository name with no hint at all.
//
// A Table answers for one snapshot of the projects: which proxy-cache project claims a namespace, and
// which names are projects. A Router keeps a Table fresh (package doc of Router).
package mirror

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// MetaNamespaces is the project metadata key listing, comma-separated, the extra namespaces (registry
// hosts, as containerd sends them in ns) a proxy-cache project answers for; admin.NormalizeMetadata
// validates it.
const MetaNamespaces = admin.MetaNamespaces

// typeDockerHub is the registry type of Docker Hub (as in the registry API).
const typeDockerHub = "docker-hub"

// dockerHubNames are the hosts a docker-hub registry answers for by default: docker.io is what
// containerd sends in ns, the other two are what image names and older configurations use.
var dockerHubNames = []string{"docker.io", "registry-1.docker.io", "index.docker.io"}

// ErrUnknownNamespace reports an ns that no project claims.
var ErrUnknownNamespace = errors.New("no project mirrors this namespace")

// Route is where a request goes. The zero Route means: not a mirror request, the name is
// <project>/<path> as usual.
type Route struct {
	Project   string // the project that serves the request
	Path      string // the repository path inside Project
	Namespace string // the namespace served (the ns the client sent), for the OCI-Namespace header; "" without ns
}

// claim is one project's claim on a namespace.
type claim struct {
	project   string
	id        int64
	explicit  bool // listed in mirror_namespaces, not derived from the registry
	dockerHub bool
}

// Conflict is a namespace claimed by more than one project; Winner serves it.
type Conflict struct {
	Namespace string
	Winner    string
	Losers    []string
}

// Table is an immutable routing snapshot. Build it with NewTable.
type Table struct {
	byNS     map[string]claim
	projects map[string]bool // project name -> is a docker-hub proxy
	deflt    string          // default project; "" = none
	conflict []Conflict
}

// NewTable builds the routing table of projects, whose proxy-cache registries are found in registries
// (by ID), with defaultProject serving requests without ns whose first segment is no project.
//
// Each proxy-cache project claims its registry's host (docker-hub registries: docker.io,
// registry-1.docker.io and index.docker.io as well) and the hosts in its mirror_namespaces metadata.
// When several projects claim a namespace, an explicit claim (mirror_namespaces) beats a derived one,
// then the oldest project (lowest ID) wins; Conflicts lists these.
func NewTable(projects []*meta.Project, registries map[int64]*meta.Registry, defaultProject string) *Table {
	t := &Table{byNS: map[string]claim{}, projects: map[string]bool{}, deflt: defaultProject}
	losers := map[string][]string{}
	for _, p := range projects {
		reg := registries[p.RegistryID]
		hub := p.IsProxy() && reg != nil && reg.Type == typeDockerHub
		t.projects[p.Name] = hub
		if !p.IsProxy() {
			continue
		}
		for ns, explicit := range namespacesOf(p, reg) {
			c := claim{project: p.Name, id: p.ID, explicit: explicit, dockerHub: hub}
			old, taken := t.byNS[ns]
			switch {
			case !taken:
				t.byNS[ns] = c
			case beats(c, old):
				t.byNS[ns] = c
				losers[ns] = append(losers[ns], old.project)
			default:
				losers[ns] = append(losers[ns], c.project)
			}
		}
	}
	for ns, l := range losers {
		slices.Sort(l)
		t.conflict = append(t.conflict, Conflict{Namespace: ns, Winner: t.byNS[ns].project, Losers: l})
	}
	slices.SortFunc(t.conflict, func(a, b Conflict) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return t
}

func beats(a, b claim) bool {
	if a.explicit != b.explicit {
		return a.explicit
	}
	return a.id < b.id
}

// namespacesOf returns the namespaces p claims, each marked explicit or derived.
func namespacesOf(p *meta.Project, reg *meta.Registry) map[string]bool {
	out := map[string]bool{}
	if reg != nil {
		if u, err := url.Parse(reg.URL); err == nil && u.Host != "" {
			out[strings.ToLower(u.Host)] = false
		}
		if reg.Type == typeDockerHub {
			for _, n := range dockerHubNames {
				out[n] = false
			}
		}
	}
	names, _ := admin.ParseNamespaces(p.Metadata[MetaNamespaces]) // validated when stored; skip what is not a host
	for _, n := range names {
		out[n] = true
	}
	return out
}

// Conflicts lists the namespaces claimed by several projects, sorted.
func (t *Table) Conflicts() []Conflict { return t.conflict }

// Resolve routes a request for repository name with ns (the query parameter, "" when absent):
//   - ns claimed by a project: that project serves name, or the rest of name when its first segment
//     is that project (containerd's per-project form with override_path). ns wins over a local project
//     named like name's first segment.
//   - ns claimed by none: a name whose first segment is a project is served as usual; any other is
//     ErrUnknownNamespace, answered at once without touching the database.
//   - no ns: a name whose first segment is a project is served as usual; any other goes to the default
//     project when there is one.
//
// Docker Hub's rule applies to names served by a docker-hub proxy: a one-segment name is library/<name>.
func (t *Table) Resolve(ns, name string) (Route, error) {
	first, rest, nested := strings.Cut(name, "/")
	if ns != "" {
		ns = strings.ToLower(ns)
		c, ok := t.byNS[ns]
		switch {
		case ok:
			path := name
			if nested && first == c.project {
				path = rest
			}
			return Route{Project: c.project, Path: hubPath(c.dockerHub, path), Namespace: ns}, nil
		case nested && t.isProject(first):
			return Route{}, nil
		}
		return Route{}, fmt.Errorf("%w: %s", ErrUnknownNamespace, ns)
	}
	if t.deflt == "" || (nested && t.isProject(first)) {
		return Route{}, nil
	}
	return Route{Project: t.deflt, Path: hubPath(t.projects[t.deflt], name)}, nil
}

func (t *Table) isProject(name string) bool {
	_, ok := t.projects[name]
	return ok
}

func hubPath(dockerHub bool, path string) string {
	if dockerHub && !strings.Contains(path, "/") {
		return "library/" + path
	}
	return path
}
