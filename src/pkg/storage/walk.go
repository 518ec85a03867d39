package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/opencontainers/go-digest"
)

// BlobInfo describes a stored blob for the garbage collector.
type BlobInfo struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time // when its bytes were stored (a link keeps the temporary file's time)
}

// BlobWalker lists the stored blobs.
type BlobWalker interface {
	// Walk calls fn for every stored blob, in no particular order. Blobs stored or deleted meanwhile may
	// or may not be seen. An error from fn stops the walk and is returned.
	Walk(ctx context.Context, fn func(BlobInfo) error) error
}

var _ BlobWalker = (*FS)(nil)

// Walk reads blobs/<alg>/<xx>/ one directory at a time; names that are not valid digests are skipped.
func (s *FS) Walk(ctx context.Context, fn func(BlobInfo) error) error {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		algDir := filepath.Join(s.blobs, string(alg))
		prefixes, err := os.ReadDir(algDir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, p := range prefixes {
			if !p.IsDir() {
				continue
			}
			if err := s.walkDir(ctx, alg, filepath.Join(algDir, p.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *FS) walkDir(ctx context.Context, alg digest.Algorithm, dir string, fn func(BlobInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(alg, e.Name())
		if !validDigest(d) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if err := fn(BlobInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

var _ BlobWalker = (*S3)(nil)

// Walk lists blobs/<alg>/ page by page (ListObjectsV2); keys that are not <xx>/<valid digest> are
// skipped. ModTime is the object's LastModified: when its bytes were stored.
func (s *S3) Walk(ctx context.Context, fn func(BlobInfo) error) error {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		prefix := s.key("blobs/" + string(alg) + "/")
		err := s.listObjects(ctx, prefix, func(o types.Object) error {
			rest := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			dir, hex, ok := strings.Cut(rest, "/")
			d := digest.NewDigestFromEncoded(alg, hex)
			if !ok || len(hex) < 2 || dir != hex[:2] || !validDigest(d) {
				return nil
			}
			return fn(BlobInfo{Digest: d, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
