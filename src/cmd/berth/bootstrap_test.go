package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
)

// TestBootstrapAdmin: the admin account across restarts and changes of the admin-password setting.
func TestBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "berth.db"))
	require.NoError(t, err)
	defer func() { _ = store.Close() }()
	log := slog.New(slog.DiscardHandler)
	check := func(pass string) {
		t.Helper()
		u, err := store.GetUserByName(ctx, auth.AdminUser)
		require.NoError(t, err)
		require.True(t, u.Sysadmin)
		require.True(t, auth.CheckPassword(u.PasswordHash, pass), "admin password should be %q", pass)
	}

	// First start without a setting: generated into the file, logged once.
	pass, file, err := bootstrapAdmin(ctx, store, "", dir, log)
	require.NoError(t, err)
	require.NotEmpty(t, file)
	check(pass)
	// Restart without a setting: nothing generated, the stored password stays, the file is not needed.
	require.NoError(t, os.Remove(file))
	again, file2, err := bootstrapAdmin(ctx, store, "", dir, log)
	require.NoError(t, err)
	require.Empty(t, again)
	require.Empty(t, file2)
	check(pass)
	_, err = os.Stat(file)
	require.True(t, os.IsNotExist(err), "no new password file once the account exists")

	// A password changed through the API (here: the store) survives a restart without the setting.
	u, err := store.GetUserByName(ctx, auth.AdminUser)
	require.NoError(t, err)
	u.PasswordHash, err = auth.HashPassword("Changed-1")
	require.NoError(t, err)
	u.Sysadmin = false
	require.NoError(t, store.UpdateUser(ctx, u))
	_, _, err = bootstrapAdmin(ctx, store, "", dir, log)
	require.NoError(t, err)
	u, err = store.GetUserByName(ctx, auth.AdminUser)
	require.NoError(t, err)
	require.True(t, auth.CheckPassword(u.PasswordHash, "Changed-1"))

	// A configured password is applied at start, and admin is a sysadmin again.
	_, _, err = bootstrapAdmin(ctx, store, "From-setting-2", dir, log)
	require.NoError(t, err)
	check("From-setting-2")
	_, _, err = bootstrapAdmin(ctx, store, "From-setting-2", dir, log)
	require.NoError(t, err)
	check("From-setting-2")

	// An upgrade from a Berth without users: the existing password file becomes the account's password.
	dir2 := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir2, "initial_admin_password"), []byte("Old-file-pw\n"), 0o600))
	store2, err := sqlstore.Open(ctx, filepath.Join(dir2, "berth.db"))
	require.NoError(t, err)
	defer func() { _ = store2.Close() }()
	pass, file, err = bootstrapAdmin(ctx, store2, "", dir2, log)
	require.NoError(t, err)
	require.Equal(t, "Old-file-pw", pass)
	require.Empty(t, file, "not generated: nothing to log")
}
