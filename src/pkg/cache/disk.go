package cache

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// diskLayout is the schema version of a Disk file (PRAGMA user_version). A file with another version is
// a cache of another layout: it is recreated, never migrated.
const diskLayout = 1

// diskBusyTimeoutMS bounds how long a statement waits for another writer of the same file.
const diskBusyTimeoutMS = 5000

// diskSchema is the whole layout. used_seq orders entries by last use (Set and Get count as use): a
// counter, not a time, so the order is exact whatever the clock does. usage holds the bytes charged
// against the bound and the last sequence number, updated in the transaction that changes them, so
// several handles on one file (or processes) keep them right.
var diskSchema = []string{
	`CREATE TABLE IF NOT EXISTS entry (
		key        TEXT PRIMARY KEY,
		value      BLOB NOT NULL,
		sum        INTEGER NOT NULL,
		size       INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used_seq   INTEGER NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS entry_used_seq_idx ON entry (used_seq)`,
	`CREATE TABLE IF NOT EXISTS usage (
		id    INTEGER PRIMARY KEY CHECK (id = 1),
		bytes INTEGER NOT NULL,
		seq   INTEGER NOT NULL
	)`,
	`INSERT INTO usage (id, bytes, seq) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING`,
	fmt.Sprintf(`PRAGMA user_version = %d`, diskLayout),
}

// Disk is a persistent Cache in one SQLite file (modernc.org/sqlite, WAL). Values survive a restart
// up to their TTL. Like Memory, the values are bounded by a total size: an entry costs
// len(key)+len(value)+64 bytes, and a Set that would exceed the bound first drops expired entries, then
// the least recently used ones (Get and Set count as use). Each record carries a CRC-32C of its key and
// value: a record that fails it is deleted and read as a miss (reported to the corruption hook), and a
// file SQLite cannot read at open is deleted and created afresh. Locks are in process only (Disk is
// for one Berth process per data directory), kept apart from values as in Memory.
//
// Disk is safe for concurrent use, also by several handles on the same file: every write is one
// IMMEDIATE transaction that also keeps the size accounting.
type Disk struct {
	db        *sql.DB
	path      string
	now       func() time.Time
	maxBytes  int64
	onCorrupt func(key string, err error)
	locks     *Memory // values bound 0: locks only
	// writeMu queues this handle's writers in Go, so that SQLite's busy handler (which polls, unfairly)
	// only ever arbitrates between handles.
	writeMu sync.Mutex
}

var _ Cache = (*Disk)(nil)

// DiskOption configures OpenDisk.
type DiskOption func(*Disk)

// WithDiskClock makes the Disk cache read the time from now instead of time.Now (tests).
func WithDiskClock(now func() time.Time) DiskOption {
	return func(d *Disk) { d.now = now }
}

// WithCorruptionHook calls fn for every corrupt record found (key, what was wrong) and, with key "",
// when the file itself was unreadable at open and was recreated. fn must not call back into the Disk.
func WithCorruptionHook(fn func(key string, err error)) DiskOption {
	return func(d *Disk) { d.onCorrupt = fn }
}

// ErrCorrupt describes what the corruption hook is told about.
var ErrCorrupt = errors.New("cache: corrupt disk cache")

// OpenDisk opens or creates the cache file at path (its directory must exist), holding at most maxBytes
// of entries. An unreadable or foreign file is replaced by an empty one.
func OpenDisk(ctx context.Context, path string, maxBytes int64, opts ...DiskOption) (*Disk, error) {
	d := &Disk{path: path, now: time.Now, maxBytes: maxBytes, onCorrupt: func(string, error) {}}
	for _, o := range opts {
		o(d)
	}
	d.locks = NewMemory(0, WithClock(d.now))
	err := d.open(ctx)
	if err != nil && isCorrupt(err) {
		d.onCorrupt("", fmt.Errorf("%w: %s recreated: %w", ErrCorrupt, path, err))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if rerr := os.Remove(path + suffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return nil, fmt.Errorf("cache: remove corrupt disk cache: %w", rerr)
			}
		}
		err = d.open(ctx)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// open connects, checks the file and creates the layout.
func (d *Disk) open(ctx context.Context) error {
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(d.path)
	dsn := fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate",
		esc, diskBusyTimeoutMS)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("cache: open disk cache: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if err := d.prepare(ctx, db); err != nil {
		_ = db.Close()
		return err
	}
	d.db = db
	return nil
}

// prepare checks the file's integrity and layout version and creates the tables.
func (d *Disk) prepare(ctx context.Context, db *sql.DB) error {
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return fmt.Errorf("cache: check disk cache: %w", err)
	}
	if check != "ok" {
		return fmt.Errorf("cache: check disk cache: %w: %s", ErrCorrupt, check)
	}
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("cache: read disk cache version: %w", err)
	}
	if version != 0 && version != diskLayout {
		return fmt.Errorf("cache: %w: layout version %d, want %d", ErrCorrupt, version, diskLayout)
	}
	for _, stmt := range diskSchema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("cache: create disk cache: %w", err)
		}
	}
	return nil
}

// isCorrupt reports whether err means the file cannot be used as it is.
func isCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
	}
	return false
}

// Close closes the file.
func (d *Disk) Close() error { return d.db.Close() }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC-32C of key and value, each preceded by its length.
func checksum(key string, value []byte) int64 {
	var n [8]byte
	h := crc32.New(castagnoli)
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(key))
	binary.BigEndian.PutUint64(n[:], uint64(len(value)))
	_, _ = h.Write(n[:])
	_, _ = h.Write(value)
	return int64(h.Sum32())
}

// Size reports the number of values held (including expired ones not yet dropped) and the bytes charged
// for them against the bound.
func (d *Disk) Size(ctx context.Context) (entries int, bytes int64, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM entry), bytes FROM usage WHERE id = 1`).Scan(&entries, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("cache: disk size: %w", err)
	}
	return entries, bytes, nil
}

// Get implements Cache.
func (d *Disk) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := d.get(ctx, key)
	return v, err
}

// get returns the value under key and when it expires. A read counts as use.
func (d *Disk) get(ctx context.Context, key string) ([]byte, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("cache: disk get: %w", err)
	}
	var (
		value   []byte
		sum     int64
		expires int64
	)
	err := d.db.QueryRowContext(ctx, `SELECT value, sum, expires_at FROM entry WHERE key = ?`, key).Scan(&value, &sum, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, ErrMiss
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cache: disk get: %w", err)
	}
	exp := time.Unix(0, expires)
	if !d.now().Before(exp) {
		if err := d.Delete(ctx, key); err != nil {
			return nil, time.Time{}, err
		}
		return nil, time.Time{}, ErrMiss
	}
	if checksum(key, value) != sum {
		d.onCorrupt(key, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt))
		if err := d.Delete(ctx, key); err != nil {
			return nil, time.Time{}, err
		}
		return nil, time.Time{}, ErrMiss
	}
	if value == nil {
		value = []byte{}
	}
	err = d.write(ctx, func(tx *sql.Tx, seq int64) (int64, error) {
		_, err := tx.ExecContext(ctx, `UPDATE entry SET used_seq = ? WHERE key = ?`, seq, key)
		return 0, err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cache: disk touch: %w", err)
	}
	return value, exp, nil
}

// Set implements Cache. An entry larger than the whole bound fails with ErrTooLarge and removes the
// value it would have replaced.
func (d *Disk) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, "disk set", ttl); err != nil {
		return err
	}
	size := entrySize(key, value)
	if size > d.maxBytes {
		if err := d.Delete(ctx, key); err != nil {
			return err
		}
		return fmt.Errorf("%w: %d bytes, bound %d", ErrTooLarge, size, d.maxBytes)
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value is stored as an empty blob
	}
	now := d.now()
	err := d.write(ctx, func(tx *sql.Tx, seq int64) (int64, error) {
		var old int64
		err := tx.QueryRowContext(ctx, `SELECT size FROM entry WHERE key = ?`, key).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO entry (key, value, sum, size, expires_at, used_seq) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (key) DO UPDATE SET value = excluded.value, sum = excluded.sum, size = excluded.size,
			 expires_at = excluded.expires_at, used_seq = excluded.used_seq`,
			key, value, checksum(key, value), size, now.Add(ttl).UnixNano(), seq); err != nil {
			return 0, err
		}
		return size - old, nil
	})
	if err != nil {
		return fmt.Errorf("cache: disk set: %w", err)
	}
	return nil
}

// Delete implements Cache.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: disk delete: %w", err)
	}
	err := d.write(ctx, func(tx *sql.Tx, _ int64) (int64, error) {
		var size int64
		err := tx.QueryRowContext(ctx, `DELETE FROM entry WHERE key = ? RETURNING size`, key).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return -size, err
	})
	if err != nil {
		return fmt.Errorf("cache: disk delete: %w", err)
	}
	return nil
}

// write runs fn in one write transaction with the next use sequence number; fn returns the change of
// the bytes charged. When the bound is exceeded afterwards, entries are evicted in the same transaction
// (expired ones first, then the least recently used), never the one just used (sequence seq).
func (d *Disk) write(ctx context.Context, fn func(tx *sql.Tx, seq int64) (int64, error)) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE usage SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&seq); err != nil {
		return err
	}
	delta, err := fn(tx, seq)
	if err != nil {
		return err
	}
	var used int64
	if err := tx.QueryRowContext(ctx, `UPDATE usage SET bytes = bytes + ? WHERE id = 1 RETURNING bytes`, delta).Scan(&used); err != nil {
		return err
	}
	if used > d.maxBytes {
		if err := d.evict(ctx, tx, seq, used); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// evict drops entries until the bytes charged fit the bound: expired ones, then by least recent use.
func (d *Disk) evict(ctx context.Context, tx *sql.Tx, keep, used int64) error {
	freed, err := sumSizes(tx.QueryContext(ctx,
		`DELETE FROM entry WHERE expires_at <= ? AND used_seq <> ? RETURNING size`, d.now().UnixNano(), keep))
	if err != nil {
		return err
	}
	for used-freed > d.maxBytes {
		var size int64
		err := tx.QueryRowContext(ctx,
			`DELETE FROM entry WHERE key = (SELECT key FROM entry WHERE used_seq <> ? ORDER BY used_seq LIMIT 1) RETURNING size`,
			keep).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			break // only the entry just used is left, and it fits alone
		}
		if err != nil {
			return err
		}
		freed += size
	}
	_, err = tx.ExecContext(ctx, `UPDATE usage SET bytes = bytes - ? WHERE id = 1`, freed)
	return err
}

// sumSizes adds up the sizes a DELETE ... RETURNING size reported.
func sumSizes(rows *sql.Rows, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	var total int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, rows.Err()
}

// TryLock implements Cache. Locks are held in process memory: a restart releases them.
func (d *Disk) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	return d.locks.TryLock(ctx, key, ttl)
}
