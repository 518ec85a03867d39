package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes. In flags, variables and the YAML file it is an integer with an optional
// unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000), e.g. 64MiB or
// 268435456. It prints in the largest binary unit that divides it exactly.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1},
}

// ParseByteSize reads a ByteSize. Unit names are case-sensitive (MB is 10^6, MiB 2^20); a space between
// number and unit is allowed.
func ParseByteSize(s string) (ByteSize, error) {
	num := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, factor = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid byte size %q (want a non-negative integer with an optional unit: 64MiB, 512KiB, 1GB, 1048576)", s)
	}
	if n > math.MaxInt64/factor {
		return 0, fmt.Errorf("byte size %q is too large", s)
	}
	return ByteSize(n * factor), nil
}

// String prints b with the largest binary unit that divides it, e.g. 64MiB; 0 and odd sizes in bytes.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b != 0 && int64(b)%u.factor == 0 {
			return strconv.FormatInt(int64(b)/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// typeName is what --help shows as a setting's type.
func typeName(ptr any) string {
	switch ptr.(type) {
	case *string:
		return "string"
	case *bool:
		return "bool"
	case *int, *int64:
		return "integer"
	case *time.Duration:
		return "duration"
	case *ByteSize:
		return "bytes"
	}
	return "value"
}

// assign parses v into the setting's field, by the field's type.
func assign(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", v)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", v)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want Go syntax: 30s, 10m, 168h)", v)
		}
		*p = d
	case *ByteSize:
		b, err := ParseByteSize(v)
		if err != nil {
			return err
		}
		*p = b
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

// show renders a setting's current value as --help shows its default ("" for an empty string).
func show(ptr any) string {
	switch p := ptr.(type) {
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *int64:
		return strconv.FormatInt(*p, 10)
	case *time.Duration:
		return shortDuration(*p)
	case *ByteSize:
		return p.String()
	}
	return ""
}

// shortDuration prints d without zero trailing units: 168h, 30m, 1m30s (time.Duration prints 168h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// flagValue is a setting on the command line. Its value is checked as the flag is parsed (so a bad value
// is reported by the flag package, naming the flag) and applied after the file and the environment.
type flagValue struct {
	ptr   any    // the setting's field, for its type
	def   string // the default as --help shows it
	value string
	set   bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.def
}

func (f *flagValue) Set(v string) error {
	if f.set && v != f.value {
		return fmt.Errorf("given twice with different values (%q, then %q)", f.value, v)
	}
	if err := assign(scratch(f.ptr), v); err != nil {
		return err
	}
	f.value, f.set = v, true
	return nil
}

// IsBoolFlag lets a boolean setting be given as --flag alone.
func (f *flagValue) IsBoolFlag() bool { _, ok := f.ptr.(*bool); return ok }

// scratch returns a new zero value of ptr's type, to parse into without touching the setting.
func scratch(ptr any) any {
	switch ptr.(type) {
	case *string:
		return new(string)
	case *bool:
		return new(bool)
	case *int:
		return new(int)
	case *int64:
		return new(int64)
	case *time.Duration:
		return new(time.Duration)
	case *ByteSize:
		return new(ByteSize)
	}
	return errors.New("unsupported") // assign reports the type
}
