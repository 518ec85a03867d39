package proxy

import (
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// upstreamError is upstream.ClientError, the one map from upstream failures to client errors.
func upstreamError(err error, notFound errcode.Code) error {
	return upstream.ClientError(err, notFound)
}

// servesLocal reports whether an upstream failure should be answered from local content: every
// failure but "not found", which is the upstream's authoritative answer.
func servesLocal(err error) bool {
	return err != nil && !upstream.IsNotFound(err)
}
