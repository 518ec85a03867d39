package proxy

import (
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// upstreamError maps an upstream client error to the error the client of Berth sees. notFound is the
// code for an upstream 404 (MANIFEST_UNKNOWN, BLOB_UNKNOWN or NAME_UNKNOWN).
func upstreamError(err error, notFound errcode.Code) error {
	if err == nil {
		return nil
	}
	if e := errcode.As(err); e != nil {
		return e
	}
	switch {
	case upstream.IsNotFound(err):
		return errUnknownUpstream(notFound)
	case upstream.IsRateLimited(err):
		return errcode.ErrTooManyRequests.Wrap(err, "the upstream registry is rate-limiting requests")
	case upstream.IsUnauthorized(err):
		return errcode.ErrUpstreamUnavailable.Wrap(err, "the upstream registry refused Berth's credentials")
	case upstream.IsInvalid(err):
		return errcode.ErrUpstreamInvalid.Wrap(err, "the upstream registry sent an invalid response")
	default:
		return errcode.ErrUpstreamUnavailable.Wrap(err, "the upstream registry is unavailable")
	}
}

// servesLocal reports whether an upstream failure should be answered from local content: every
// failure but "not found", which is the upstream's authoritative answer.
func servesLocal(err error) bool {
	return err != nil && !upstream.IsNotFound(err)
}
