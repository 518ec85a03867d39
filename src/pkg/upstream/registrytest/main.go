package registrytest

import (
	"io"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
)

// Main runs m's tests and exits with their result, for the TestMain of a package whose tests start
// distribution: its tracing must not try to export from tests (OTEL_TRACES_EXPORTER=none), and its
// request log (logrus) would drown the output of a failing test.
func Main(m *testing.M) {
	_ = os.Setenv("OTEL_TRACES_EXPORTER", "none")
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}
