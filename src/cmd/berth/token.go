package main

import (
	"crypto/ecdsa"
	"strings"

	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/token"
	registryhttp "github.com/berth-registry/berth/src/server/registry"
	tokenhttp "github.com/berth-registry/berth/src/server/token"
)

// tokenService loads the signing key (generating it on first start) and the extra verification keys.
func tokenService(cfg config.Config) (*token.Service, error) {
	signer, err := token.LoadOrCreateSigningKey(cfg.TokenSigningKeyFileOrDefault())
	if err != nil {
		return nil, err
	}
	var verify []*ecdsa.PublicKey
	for _, f := range cfg.TokenVerifyKeyFileList() {
		k, err := token.LoadVerifyKey(f)
		if err != nil {
			return nil, err
		}
		verify = append(verify, k)
	}
	keys, err := token.NewKeySet(signer, verify...)
	if err != nil {
		return nil, err
	}
	return token.New(keys, token.Options{Service: cfg.TokenService, Expiry: cfg.TokenExpiry})
}

// bearerChallenge is the registry's challenge: the token endpoint under external-url, or under the
// request's own scheme and Host.
func bearerChallenge(cfg config.Config) *registryhttp.BearerChallenge {
	c := &registryhttp.BearerChallenge{RealmPath: tokenhttp.Path, Service: cfg.TokenService}
	if cfg.ExternalURL != "" {
		c.Realm = strings.TrimRight(cfg.ExternalURL, "/") + tokenhttp.Path
	}
	return c
}
