package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// InsecureKeyFileError reports a key file that grants access to its group or to others. LoadOrCreateKey
// returns it together with the loaded key: the key is usable, and the caller decides whether to warn
// (for example when the file is a Kubernetes secret mounted 0644 inside a container) or to refuse.
type InsecureKeyFileError struct {
	Path string
	Mode fs.FileMode
}

func (e *InsecureKeyFileError) Error() string {
	return fmt.Sprintf("secret key file %s has mode %04o, readable beyond its owner; run chmod 600 %s",
		e.Path, e.Mode.Perm(), e.Path)
}

// LoadOrCreateKey returns the KeySize-byte key stored at path, creating the file (and its directory, mode
// 0700) with KeySize random bytes and mode 0600 when it does not exist. Creation is atomic and never
// replaces a file another process created first: the key is written to a temporary file beside path and
// published with a hard link, so concurrent first starts agree on one key.
//
// An existing file may hold the key as KeySize raw (binary) bytes, or as 64 hex digits or standard base64 text
// (surrounding white space ignored), so operators can provide one made with `openssl rand -hex 32`.
//
// When the existing file's permissions allow its group or others any access (not checked on Windows),
// the key is returned with a non-nil *InsecureKeyFileError; every other error comes with a nil key.
func LoadOrCreateKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("secret: empty key file path")
	}
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, err
		}
		key, err = readKey(path)
	}
	return key, err
}

// readKey reads and decodes the key file and checks its permissions.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // keeps fs.ErrNotExist visible to the caller
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("secret: key file %s is not a regular file", path)
	}
	const limit = 4 * KeySize // larger than any accepted encoding
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("secret: reading key file %s: %w", path, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("secret: key file %s is too large to hold a %d-byte key", path, KeySize)
	}
	key, err := decodeKey(data)
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return key, &InsecureKeyFileError{Path: path, Mode: info.Mode()}
	}
	return key, nil
}

// decodeKey accepts KeySize raw bytes, 2*KeySize hex digits, or base64 of KeySize bytes. KeySize bytes
// that are all printable ASCII are text (a password or a short hex string), not a random key, and rejected.
func decodeKey(b []byte) ([]byte, error) {
	if len(b) == KeySize && !isPrintable(b) {
		return bytes.Clone(b), nil
	}
	text := bytes.TrimSpace(b)
	if len(text) == 2*KeySize {
		if key, err := hex.DecodeString(string(text)); err == nil {
			return key, nil
		}
	}
	if key, err := base64.StdEncoding.DecodeString(string(text)); err == nil && len(key) == KeySize {
		return key, nil
	}
	return nil, fmt.Errorf("want %d raw bytes, %d hex digits or base64 of %d bytes, got %d bytes",
		KeySize, 2*KeySize, KeySize, len(b))
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			if c != '\n' && c != '\r' && c != '\t' {
				return false
			}
		}
	}
	return true
}

// createKey writes a new random key to path unless a file exists there already.
func createKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret: creating key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("secret: generating key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secret-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("secret: creating key file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, werr := tmp.Write(key)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("secret: writing key file: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("secret: publishing key file: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes the new directory entry durable: losing it in a crash would mean a new key on the next
// start and every secret sealed in between unreadable. Platforms that cannot sync a directory are tolerated.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("secret: syncing key directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("secret: syncing key directory: %w", err)
	}
	return nil
}
