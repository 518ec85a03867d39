package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"
)

// S3Options configures an S3 store.
type S3Options struct {
	Bucket string
	// Prefix is prepended to every key ("" for the bucket's root); surrounding slashes are ignored.
	Prefix string
	// Endpoint is the S3 API's base URL (empty: AWS's, chosen by Region).
	Endpoint string
	// Region defaults to the AWS chain's (AWS_REGION, shared config), else us-east-1.
	Region string
	// PathStyle addresses buckets as <endpoint>/<bucket>/ rather than <bucket>.<endpoint>/.
	PathStyle bool
	// AccessKey and SecretKey, when both set, replace the AWS credential chain (environment, shared
	// credentials and config files, web identity, instance roles).
	AccessKey, SecretKey string
	// TempDir holds the local temporary files of writes in progress (readers follow them, as on the
	// filesystem backend). NewS3 empties it.
	TempDir string
	// PartSize is the size of every multipart part but the last: the memory one append of an upload
	// session holds, and the unit of large uploads. At least 5 MiB; default 16 MiB.
	PartSize int64
	// Redirect makes open blobs offer a presigned GET URL (see Redirecter) valid for RedirectExpiry
	// (default 5 minutes).
	Redirect       bool
	RedirectExpiry time.Duration
	// HTTPClient replaces the SDK's HTTP client (nil: the SDK's, with a larger idle connection pool).
	HTTPClient *http.Client
}

const (
	minPartSize     = 5 << 20
	defaultPartSize = 16 << 20
	// maxCopySize is the largest object a single CopyObject may copy; larger ones are copied in parts.
	maxCopySize = 5 << 30
)

// S3 is a Store on an S3-compatible object store. Its layout under the prefix:
//
//	blobs/<alg>/<first two hex>/<hex>   content-addressed blobs, written only after their digest matched
//	uploads/<id>/state                  an upload session: size, hash state, multipart upload, parts
//	uploads/<id>/tail-<size>            the session's bytes past its last full part (< PartSize)
//	uploads/<id>/data                   the session's multipart upload, completed at commit, then copied
//
// Every node of a cluster may open the same bucket and prefix: blobs are immutable and written whole
// (a PutObject or a CompleteMultipartUpload, both atomic in S3), and an upload session lives entirely in
// the bucket, so that its requests may land on any node.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	prefix   string // "" or ending in "/"
	tmp      string
	partSize int64
	redirect time.Duration // 0: no redirects
	copySize int64         // objects larger than this are copied in parts (tests lower it)
	locks    keyedMutex    // serialises this node's requests to one upload session
}

var _ Store = (*S3)(nil)

// NewS3 connects to the bucket (checking that it is reachable) and empties opts.TempDir.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	if opts.Bucket == "" {
		return nil, errors.New("storage: s3: no bucket")
	}
	if opts.PartSize == 0 {
		opts.PartSize = defaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, fmt.Errorf("storage: s3: part size %d is below S3's minimum of 5 MiB", opts.PartSize)
	}
	if opts.Redirect && opts.RedirectExpiry <= 0 {
		opts.RedirectExpiry = 5 * time.Minute
	}
	client, err := newS3Client(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &S3{
		client: client, presign: s3.NewPresignClient(client), bucket: opts.Bucket,
		tmp: opts.TempDir, partSize: opts.PartSize, copySize: maxCopySize,
	}
	if p := strings.Trim(opts.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	if opts.Redirect {
		s.redirect = opts.RedirectExpiry
	}
	if err := emptyDir(s.tmp); err != nil {
		return nil, err
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return nil, fmt.Errorf("storage: s3: bucket %s: %w", s.bucket, err)
	}
	return s, nil
}

func newS3Client(ctx context.Context, opts S3Options) (*s3.Client, error) {
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			// Blob bodies stream through. Writes: a larger buffer than the 4 KiB default halves the
			// syscalls per byte of an upload. Reads keep the small default: a read of at least the
			// buffer's size into an empty buffer goes straight from the socket into the caller's chunk,
			// whereas a large buffer would take in every chunk's remainder and copy it again.
			t.MaxIdleConnsPerHost = 64
			t.WriteBufferSize = 256 << 10
		})),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(opts.Region))
	}
	if opts.AccessKey != "" || opts.SecretKey != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	// Checksums only where S3 requires them: digests are verified by Berth itself, and S3-compatible
	// servers differ in the newer checksum headers.
	loadOpts = append(loadOpts,
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("storage: s3: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient // after loading: AWS_CA_BUNDLE applies only to the SDK's client
		} else if o.HTTPClient != nil {
			o.HTTPClient = newSpliceClient(o.HTTPClient) // object GETs over plain HTTP: see spliceClient
		}
	}), nil
}

// emptyDir creates dir if needed and removes what it holds (temporary files of a previous process).
func emptyDir(dir string) error {
	if dir == "" {
		return errors.New("storage: no temporary directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: read tmp: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("storage: remove stale temp file: %w", err)
		}
	}
	return nil
}

func (s *S3) key(p string) string { return s.prefix + p }

// blobKey returns where a validated digest's content lives.
func (s *S3) blobKey(d digest.Digest) string {
	hex := d.Encoded()
	return s.key("blobs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex)
}

// isS3NotFound reports an S3 answer of 404 (NoSuchKey, NotFound, NoSuchUpload).
func isS3NotFound(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

func s3Error(op string, d digest.Digest, err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("storage: %s %s: %w", op, d, ErrNotFound)
	}
	return fmt.Errorf("storage: %s %s: %w", op, d, err)
}

// head returns the size of the object at key.
func (s *S3) head(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Stat returns the size of the blob, or an error wrapping ErrNotFound.
func (s *S3) Stat(ctx context.Context, d digest.Digest) (int64, error) {
	if !validDigest(d) {
		return 0, fmt.Errorf("storage: stat %.80q: %w", d, ErrNotFound)
	}
	size, err := s.head(ctx, s.blobKey(d))
	if err != nil {
		return 0, s3Error("stat", d, err)
	}
	return size, nil
}

// Open returns the blob for reading, or an error wrapping ErrNotFound. It costs one request: the GET of
// the whole object, whose body the reads stream (a HEAD instead when redirects are on: the client
// fetches the object itself). ctx bounds the whole life of the Blob.
func (s *S3) Open(ctx context.Context, d digest.Digest) (Blob, error) {
	if s.redirect > 0 || !validDigest(d) {
		size, err := s.Stat(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("storage: open: %w", err)
		}
		return &s3Blob{ctx: ctx, s: s, key: s.blobKey(d), size: size}, nil
	}
	b := &s3Blob{ctx: ctx, s: s, key: s.blobKey(d)}
	out, err := b.get()
	if err != nil {
		return nil, fmt.Errorf("storage: open: %w", s3Error("get", d, err))
	}
	b.body, b.size = out.Body, aws.ToInt64(out.ContentLength)
	return b, nil
}

// Delete removes the blob, or returns an error wrapping ErrNotFound.
func (s *S3) Delete(ctx context.Context, d digest.Digest) error {
	if _, err := s.Stat(ctx, d); err != nil {
		return fmt.Errorf("storage: delete: %w", err)
	}
	return s.deleteKey(ctx, s.blobKey(d))
}

func (s *S3) deleteKey(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil && !isS3NotFound(err) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}

// Put stores r's content under d after verifying it: through a local temporary file (bounded memory),
// uploaded to d's key only once the digest matched. If d is already stored, r is not read.
func (s *S3) Put(ctx context.Context, d digest.Digest, r io.Reader) (int64, error) {
	if !validDigest(d) {
		return 0, fmt.Errorf("storage: put %.80q: %w", d, ErrInvalidDigest)
	}
	if size, err := s.Stat(ctx, d); err == nil {
		return size, nil
	}
	w, err := s.NewWriter(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Cancel() }() // a no-op after Commit; removes the file on errors and panics
	n, err := w.WriteFrom(ctx, r, nil)
	if err != nil {
		return 0, fmt.Errorf("storage: put %s: %w", d, err)
	}
	if err := w.Commit(ctx, d); err != nil {
		return 0, fmt.Errorf("storage: put %s: %w", d, err)
	}
	return n, nil
}

// NewWriter starts a write to a local temporary file (followed by readers through Path, as on the
// filesystem); Commit uploads it to the blob's key once verified.
func (s *S3) NewWriter(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newSpoolWriter(s.tmp, s.install)
}
