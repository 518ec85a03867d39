package main

import (
	_ "github.com/beego/beego/v2/client/orm"
	_ "github.com/distribution/distribution/v3/registry"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/lib/pq"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/stretchr/testify/require"
	_ "golang.org/x/sync/singleflight"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)

func main() {}
