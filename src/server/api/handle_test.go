package api

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// TestOneErrorPath keeps the handlers returning their errors: every route is registered through
// handle, and errcode.Serve is reached only through fail, called by handle and by ServeHTTP (for
// requests no route takes).
func TestOneErrorPath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	routes := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
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
					routes++
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

// TestHandleWritesTheError: handle answers a returned *errcode.Error with its status in Harbor's shape,
// any other error as a 500 whose text stays in the log, and leaves a handler's own answer alone.
func TestHandleWritesTheError(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{errcode.ErrConflict.WithMessage("taken"), http.StatusConflict, "CONFLICT"},
		{errcode.ErrBadRequest.WithMessage("bad"), http.StatusBadRequest, "BAD_REQUEST"},
		{errors.New("dial tcp 10.1.2.3:5432"), http.StatusInternalServerError, "UNKNOWN"},
		{nil, http.StatusTeapot, ""},
	}
	for _, tc := range cases {
		h := e.api.handle(func(w http.ResponseWriter, _ *http.Request) error {
			if tc.err == nil {
				w.WriteHeader(http.StatusTeapot)
			}
			return tc.err
		})
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodGet, Prefix+"/x", nil))
		require.Equal(t, tc.status, w.Code, "%v", tc.err)
		if tc.code != "" {
			require.Equal(t, tc.code, errCode(t, w))
			require.NotContains(t, w.Body.String(), "10.1.2.3")
		}
	}
}
