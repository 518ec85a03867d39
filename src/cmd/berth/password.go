package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// bootstrapAdmin makes sure the system administrator auth.AdminUser exists in users. On first start
// (no such user) it is created, sysadmin, with the configured password or, when none is configured,
// the one in <dataDir>/initial_admin_password (generated if absent; then generated names the file, as
// adminPassword returns it). On later starts a configured password that the stored hash does not
// match replaces it, and the account is made sysadmin again: the setting stays authoritative and is
// the way back in after a lost password. Without a configured password the stored account is left as
// it is, so password changes made through the API persist across restarts.
func bootstrapAdmin(ctx context.Context, users meta.UserStore, configured, dataDir string, log *slog.Logger) (password, generated string, err error) {
	u, err := users.GetUserByName(ctx, auth.AdminUser)
	switch {
	case err == nil:
		if configured == "" || (auth.CheckPassword(u.PasswordHash, configured) && u.Sysadmin) {
			return "", "", nil
		}
		if u.PasswordHash, err = auth.HashPassword(configured); err != nil {
			return "", "", err
		}
		u.Sysadmin = true
		if err := users.UpdateUser(ctx, u); err != nil {
			return "", "", fmt.Errorf("reset admin password: %w", err)
		}
		log.Warn("the stored admin password differed from the admin-password setting: replaced it", "user", auth.AdminUser)
		return configured, "", nil
	case !errors.Is(err, meta.ErrNotFound):
		return "", "", fmt.Errorf("read admin account: %w", err)
	}
	password, generated, err = adminPassword(configured, dataDir)
	if err != nil {
		return "", "", err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", "", err
	}
	_, err = users.CreateUser(ctx, &meta.User{Username: auth.AdminUser, PasswordHash: hash, Sysadmin: true,
		Comment: "system administrator created on first start"})
	if err != nil && !errors.Is(err, meta.ErrConflict) { // ErrConflict: another node created it first
		return "", "", fmt.Errorf("create admin account: %w", err)
	}
	return password, generated, nil
}

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
