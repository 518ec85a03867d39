package config

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// derivedDefaults are the defaults --help shows for settings whose empty value stands for a path in
// the data directory: the one default each has, as the operator sees it.
var derivedDefaults = map[string]string{ //nolint:gosec // G101: file paths shown in --help, not credentials
	"database-url":           "<data-dir>/berth.db",
	"secret-key-file":        "<data-dir>/secret.key",
	"token-signing-key-file": "<data-dir>/token.key",
}

// defaultText is the one default --help shows for s ("" when the empty value is the default and the
// usage says what it means).
func defaultText(s setting) string {
	if d, ok := derivedDefaults[s.name]; ok {
		return d
	}
	return show(s.ptr)
}

const helpIntro = `Usage: berth serve [flags]

Every setting has one name in three places, highest precedence first: the flag (--data-dir), the
environment variable (BERTH_DATA_DIR) and the key of the YAML file named by --config or BERTH_CONFIG
(data_dir). make/berth.yml is the commented template. Types: duration in Go syntax (30s, 10m, 168h);
bytes as an integer with an optional unit (64MiB, 512KiB, 1GB; MiB = 2^20, MB = 10^6); boolean true or
false (a boolean flag alone means true).

`

// writeHelp prints every setting: flag, type, YAML key, variable, meaning and its one default.
func writeHelp(w io.Writer, settings []setting) {
	var b strings.Builder
	b.WriteString(helpIntro)
	for _, s := range settings {
		fmt.Fprintf(&b, "  --%s %s    yaml: %s    env: %s\n", s.name, typeName(s.ptr), yamlKey(s.name), envName(s.name))
		fmt.Fprintf(&b, "        %s", s.usage)
		if d := defaultText(s); d != "" {
			fmt.Fprintf(&b, " (default %s)", d)
		}
		b.WriteString("\n")
	}
	b.WriteString("  --config string    env: BERTH_CONFIG\n        YAML configuration file (keys as above); none by default\n")
	_, _ = io.WriteString(w, b.String())
}

// Help writes what `berth serve --help` shows: every setting with its type, YAML key, environment
// variable, meaning and default.
func Help(w io.Writer) {
	c := Defaults()
	writeHelp(w, c.settings())
}

// registerFlags adds one flag per setting to fs and returns them by name; --help prints writeHelp.
func registerFlags(fs *flag.FlagSet, settings []setting) map[string]*flagValue {
	flags := make(map[string]*flagValue, len(settings))
	for _, s := range settings {
		f := &flagValue{ptr: s.ptr, def: defaultText(s)}
		fs.Var(f, s.name, s.usage)
		flags[s.name] = f
	}
	// Load reports parse errors and flag.ErrHelp to its caller, which prints them (and Help) once.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return flags
}
