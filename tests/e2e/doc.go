// Package e2e drives a real bin/berth with the real registry clients (oras, crane, cosign, notation).
//
// Each test starts its own server on 127.0.0.1:0 (the bound port is read back from the server's own log
// line, so no other process can be the one answering) with a temporary data directory and a known
// admin password, creates the projects it needs through the REST API, and runs the client binaries with
// an isolated HOME, DOCKER_CONFIG and XDG_CONFIG_HOME. The proxy-cache tests run a second Berth, the
// CNCF distribution registry (no referrers API; its binary, or in-process through registrytest) or
// go-containerregistry's registry (in-process) as the upstream; the Redis outage test starts a private
// redis-server on its own port (never the shared one). Settings, all optional:
//
//	BERTH_BIN                the server binary (default ../../bin/berth; `make e2e` builds it)
//	BERTH_TOOLS_BIN          folder with oras, crane, cosign, notation and the CNCF distribution
//	                         registry (default ../../.tools/bin; `make tools`)
//	BERTH_TEST_POSTGRES_URL  PostgreSQL for the backend test (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
//	BERTH_TEST_REDIS_URL     Redis for the backend test (default redis://127.0.0.1:6379/0)
//
// A missing binary or service skips the test locally and fails it when CI=true; a missing redis-server
// also fails it under BERTH_REQUIRE_REDIS=1, which `make e2e` (and so `make test`) sets.
package e2e
