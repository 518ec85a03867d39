package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// adminPassword returns the configured admin password. When none is configured it reads
// <dataDir>/initial_admin_password, creating it (mode 0600) with a random password on first start; then
// generated is the file's path, and the caller logs the password once the server listens
// (logGeneratedPassword), so that the line is not lost among start-up failures.
func adminPassword(configured, dataDir string) (password, generated string, err error) {
	if configured != "" {
		return configured, "", nil
	}
	path := filepath.Join(dataDir, "initial_admin_password")
	b, err := os.ReadFile(path)
	if err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			return p, "", nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("read admin password: %w", err)
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	p := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("write admin password: %w", err)
	}
	if _, err := f.WriteString(p + "\n"); err != nil {
		_ = f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return p, path, nil
}

// logGeneratedPassword logs a password adminPassword generated into file: once, after the listener is
// bound.
func logGeneratedPassword(log *slog.Logger, password, file string) {
	log.Warn("generated the admin password; it is also in the file named here (mode 0600) and stays valid across restarts",
		"user", "admin", "password", password, "file", file)
}
