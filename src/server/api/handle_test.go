package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOneErrorPath keeps the handlers returning their errors: every route is registered through
// handle (routes registers the routeTable, whose handlers return an error, and nothing else does), and errcode.Serve is reached only through fail, called by handle and by ServeHTTP (for
// requests no route takes).
func TestOneErrorPath(t *testing.T) {
	fset := token.NewFileSet()
	registrations := 0
	for _, name := range sourceFiles(t) {
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch callee(call) {
				case "HandleFunc":
					registrations++
					require.Equal(t, "handle", callee(call.Args[1]), "%s: %s registers a route without handle", fset.Position(call.Pos()), fd.Name.Name)
				case "fail":
					require.Contains(t, []string{"handle", "ServeHTTP"}, fd.Name.Name, "%s: %s writes an error itself", fset.Position(call.Pos()), fd.Name.Name)
				case "Serve":
					require.Equal(t, "fail", fd.Name.Name, "%s: errcode.Serve outside fail", fset.Position(call.Pos()))
				}
				return true
			})
		}
	}
	require.Positive(t, registrations, "the route registrations were found")
	routes := 0
	for _, g := range (&API{}).routeTable() {
		routes += len(g.routes)
	}
	require.Greater(t, routes, 50, "the routes were found")
}

// callee names the function or method e calls ("" when e is no call).
func callee(e ast.Expr) string {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return ""
	}
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.Ident:
		return f.Name
	}
	return ""
}

// sourceFiles lists the package's non-test Go files.
func sourceFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	return slices.DeleteFunc(files, func(name string) bool { return strings.HasSuffix(name, "_test.go") })
}
