package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/upstream"
)

// pingFailure is what the admin is told about a failed registry check: the kind of failure and the
// upstream's HTTP status, never the cause's text. A cause names the addresses a URL resolved to and
// the dial or TLS error, which would turn the ping endpoint into a probe of Berth's internal network;
// the cause goes to the log instead.
func pingFailure(err error) string {
	var re *upstream.Error
	switch {
	case errors.As(err, &re):
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the registry did not answer within %s", PingTimeout)
	default:
		return "the registry could not be checked"
	}
	status := ""
	if re.Status != 0 {
		status = fmt.Sprintf(" (HTTP %d)", re.Status)
	}
	switch re.Kind {
	case upstream.Unauthorized:
		return "the registry refused the credentials" + status
	case upstream.RateLimited:
		return "the registry is rate-limiting requests" + status
	case upstream.NotFound, upstream.Unsupported:
		return "the URL does not serve the registry API at /v2/" + status
	case upstream.Unavailable:
		if re.Status != 0 {
			return "the registry answered with a server error" + status
		}
		return "the registry could not be reached"
	}
	if re.Status != 0 {
		return "the registry answered unexpectedly" + status
	}
	return "the registry's answer or settings are not usable"
}
