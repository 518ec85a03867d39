package registry_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// forbiddenDeps are packages the HTTP handlers must not link: they talk to a content.Service and a project
// resolver, never to a database or a cache server.
var forbiddenDeps = []string{
	"database/sql",
	"github.com/beego/beego/v2/client/orm",
	"github.com/lib/pq",
	"github.com/jackc/pgx",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/redis/go-redis",
}

// TestNoDatabaseOrRedisDependencies keeps src/server/registry free of database and Redis packages, in the
// manner of go-containerregistry's depcheck: it asks `go list -deps` and prints the import chain of any
// offender.
func TestNoDatabaseOrRedisDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	const root = "github.com/berth-registry/berth/src/server/registry"
	out, err := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, root).CombinedOutput()
	require.NoError(t, err, "go list: %s", out)

	imports := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	for _, bad := range forbiddenDeps {
		var worst []string
		for pkg := range imports {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				if c := chain(imports, root, pkg); worst == nil || len(c) < len(worst) {
					worst = c
				}
			}
		}
		if worst != nil {
			t.Errorf("%s must not depend on %s; import chain: %s", root, bad, strings.Join(worst, " -> "))
		}
	}
}

// chain returns a shortest import path from root to target.
func chain(imports map[string][]string, root, target string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == target {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{root, "?", target}
}
