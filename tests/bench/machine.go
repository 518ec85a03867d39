package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// fsNames are the statfs(2) magic numbers of the filesystems a run's temporary directory may be on.
var fsNames = map[int64]string{
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
	0x2FC12FC1: "zfs",
	0x6969:     "nfs",
	0x65735546: "fuse",
	0x858458F6: "ramfs",
	0xF2F52010: "f2fs",
	0x9FA0:     "proc",
}

// fsType names the filesystem dir is on (statfs), or gives its magic number when it is not a known one.
func fsType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "? (" + err.Error() + ")"
	}
	if n, ok := fsNames[int64(st.Type)]; ok { // int64 already on linux/amd64, not on every platform
		return n
	}
	return fmt.Sprintf("magic %#x", st.Type)
}

// kernel is uname's system, release, version and machine.
func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "? (" + err.Error() + ")"
	}
	return fmt.Sprintf("%s %s %s %s", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
		unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]))
}
