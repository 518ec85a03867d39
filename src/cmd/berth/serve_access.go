package main

import (
	"context"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/robot"
	"github.com/berth-registry/berth/src/pkg/token"
	"github.com/berth-registry/berth/src/server/mirror"
)

// buildAccess builds who may do what: the token service, robot accounts, the authenticator, and the
// registry-mirror routing of anonymous pulls.
func (n *node) buildAccess(context.Context) error {
	tokens, err := tokenService(n.cfg)
	if err != nil {
		return err
	}
	n.tokens = tokens
	// A robot disabled or deleted is refused within a second, also with tokens issued before.
	robots := robot.NewVerifier(n.store, n.cfg.RobotNamePrefix, 500*time.Millisecond)
	// Failed logins are counted per client address and per user name and locked out exponentially.
	// Users and their project roles come from the store; successful password checks and roles are
	// reused for auth.DefaultCacheTTL. Robot names go to the robot verifier, bearer tokens to the token
	// service's verifier.
	n.authn = auth.New(n.store, auth.WithThrottle(auth.NewThrottle(auth.ThrottleOptions{}), n.log.With("component", "auth")),
		auth.WithAudit(n.auditW), auth.WithBasic(robots), auth.WithBearer(token.NewVerifier(tokens, robots.Active)))
	// Registry-mirror routing (?ns=, the default project): a table of every project, rebuilt after
	// changes made through this node's API, and every 5 s for other nodes' changes.
	n.mirrors = mirror.NewRouter(n.store, n.cfg.MirrorDefaultProject, 5*time.Second, n.log.With("component", "mirror"))
	return nil
}
