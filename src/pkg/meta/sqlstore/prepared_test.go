package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		name  string
		d     *dialect
		query string
		want  string
	}{
		{"sqlite unchanged", sqliteDialect, `SELECT a FROM t WHERE x = ? AND y = ?`, `SELECT a FROM t WHERE x = ? AND y = ?`},
		{"postgres numbered", postgresDialect, `SELECT a FROM t WHERE x = ? AND y = ?`, `SELECT a FROM t WHERE x = $1 AND y = $2`},
		{"postgres none", postgresDialect, `SELECT 1`, `SELECT 1`},
		{"postgres ten and more", postgresDialect, `?????????? ?`, `$1$2$3$4$5$6$7$8$9$10 $11`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { require.Equal(t, tt.want, tt.d.rebind(tt.query)) })
	}
}
