package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadOrCreateKeyCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "secret.key")
	key, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	require.Len(t, key, KeySize)
	require.NotEqual(t, make([]byte, KeySize), key)

	info, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, key, onDisk)

	again, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	require.Equal(t, key, again, "a second load returns the same key")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")
}

func TestLoadOrCreateKeyConcurrentFirstStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keys[0], keys[i])
	}
}

func TestLoadOrCreateKeyFormats(t *testing.T) {
	want := bytes.Repeat([]byte{0xAB}, KeySize)
	cases := []struct {
		name    string
		content []byte
		ok      bool
	}{
		{"raw", want, true},
		{"hex", []byte(hex.EncodeToString(want)), true},
		{"hex with newline", []byte(hex.EncodeToString(want) + "\n"), true},
		{"base64", []byte(base64.StdEncoding.EncodeToString(want) + "\n"), true},
		{"empty", nil, false},
		{"short raw", want[:31], false},
		{"long raw", append(bytes.Clone(want), 1), false},
		{"short hex (32 text bytes)", []byte(hex.EncodeToString(want[:16])), false},
		{"32-byte password", []byte("correct horse battery staple!!!!"), false},
		{"base64 of 16 bytes", []byte(base64.StdEncoding.EncodeToString(want[:16])), false},
		{"huge", bytes.Repeat([]byte{'a'}, 1<<20), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret.key")
			require.NoError(t, os.WriteFile(path, tc.content, 0o600))
			key, err := LoadOrCreateKey(path)
			if !tc.ok {
				require.Error(t, err)
				require.Nil(t, key)
				got, rerr := os.ReadFile(path)
				require.NoError(t, rerr)
				require.Equal(t, string(tc.content), string(got), "a bad key file is never replaced")
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, key)
		})
	}
}

func TestLoadOrCreateKeyPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX permissions")
	}
	cases := []struct {
		mode     os.FileMode
		insecure bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o644, true},
		{0o604, true},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret.key")
			want := bytes.Repeat([]byte{7}, KeySize)
			require.NoError(t, os.WriteFile(path, want, 0o600))
			require.NoError(t, os.Chmod(path, tc.mode))
			key, err := LoadOrCreateKey(path)
			require.Equal(t, want, key, "the key is returned either way")
			if !tc.insecure {
				require.NoError(t, err)
				return
			}
			var ie *InsecureKeyFileError
			require.True(t, errors.As(err, &ie), "got %v", err)
			require.Equal(t, path, ie.Path)
			require.Equal(t, tc.mode, ie.Mode.Perm())
			require.Contains(t, err.Error(), "chmod 600")
		})
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	_, err := LoadOrCreateKey("")
	require.Error(t, err)

	dir := t.TempDir()
	key, err := LoadOrCreateKey(dir) // a directory, not a file
	require.Error(t, err)
	require.Nil(t, key)
}

func TestKeyWorksWithBox(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	require.NoError(t, err)
	b, err := NewBox(key)
	require.NoError(t, err)
	s, err := b.Seal("x")
	require.NoError(t, err)
	got, err := b.Open(s)
	require.NoError(t, err)
	require.Equal(t, "x", got)
}
