package registry

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		header     string
		size       int64
		start, end int64
		wantErr    error
	}{
		{"bytes=0-99", 1000, 0, 99, nil},
		{"bytes=0-0", 1000, 0, 0, nil},
		{"bytes=10-", 1000, 10, 999, nil},
		{"bytes=-100", 1000, 900, 999, nil},
		{"bytes=-5000", 1000, 0, 999, nil},
		{"bytes=500-5000", 1000, 500, 999, nil},
		{"bytes=999-999", 1000, 999, 999, nil},
		{"BYTES=1-2", 1000, 1, 2, nil},
		{" bytes=1-2 ", 1000, 1, 2, nil},
		{"bytes=0-99999999999999999999999", 10, 0, 9, nil},
		{"bytes=-99999999999999999999999", 10, 0, 9, nil},

		{"bytes=1000-", 1000, 0, 0, errRangeNotSatisfiable},
		{"bytes=1000-2000", 1000, 0, 0, errRangeNotSatisfiable},
		{"bytes=99999999999999999999999-", 10, 0, 0, errRangeNotSatisfiable},
		{"bytes=-0", 1000, 0, 0, errRangeNotSatisfiable},
		{"bytes=0-", 0, 0, 0, errRangeNotSatisfiable},
		{"bytes=-1", 0, 0, 0, errRangeNotSatisfiable},

		{"", 1000, 0, 0, errRangeInvalid},
		{"bytes=", 1000, 0, 0, errRangeInvalid},
		{"bytes=-", 1000, 0, 0, errRangeInvalid},
		{"bytes=5-1", 1000, 0, 0, errRangeInvalid},
		{"bytes=0-1,5-6", 1000, 0, 0, errRangeInvalid},
		{"bytes=a-b", 1000, 0, 0, errRangeInvalid},
		{"bytes=+1-2", 1000, 0, 0, errRangeInvalid},
		{"bytes=1--2", 1000, 0, 0, errRangeInvalid},
		{"bytes=0x1-2", 1000, 0, 0, errRangeInvalid},
		{"items=0-1", 1000, 0, 0, errRangeInvalid},
		{"bytes 0-1", 1000, 0, 0, errRangeInvalid},
		{"0-1", 1000, 0, 0, errRangeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			start, end, err := rangeBounds(tt.header, tt.size)
			requireBounds(t, start, end, err, tt.start, tt.end, tt.wantErr)
		})
	}
}

// requireBounds requires a parsed range (start, end, err) to be wantErr, or with no wantErr to be
// [wantStart, wantEnd].
func requireBounds(t *testing.T, start, end int64, err error, wantStart, wantEnd int64, wantErr error) {
	t.Helper()
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr)
		return
	}
	require.NoError(t, err)
	require.Equal(t, wantStart, start)
	require.Equal(t, wantEnd, end)
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		header     string
		start, end int64
		ok         bool
	}{
		{"0-99", 0, 99, true},
		{"100-100", 100, 100, true},
		{"bytes=0-99", 0, 99, true},
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{"0-", 0, 0, false},
		{"-5", 0, 0, false},
		{"5-1", 0, 0, false},
		{" 0-1", 0, 0, false},
		{"0-1 ", 0, 0, false},
		{"bytes 0-99/100", 0, 0, false},
		{"bytes 0-99/*", 0, 0, false},
		{"0-99/*", 0, 0, false},
		{"bytes=bytes=0-1", 0, 0, false},
		{"0-99999999999999999999999", 0, 0, false},
		{"+0-1", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			start, end, err := contentRangeBounds(tt.header)
			var wantErr error
			if !tt.ok {
				wantErr = errContentRangeInvalid
			}
			requireBounds(t, start, end, err, tt.start, tt.end, wantErr)
		})
	}
}

func TestParsePagination(t *testing.T) {
	tests := []struct {
		query string
		max   int
		n     int
		last  string
		ok    bool
	}{
		{"", 100, 0, "", true},
		{"n=", 100, 0, "", true},
		{"n=10", 100, 10, "", true},
		{"n=0", 100, 0, "", true},
		{"n=100", 100, 100, "", true},
		{"n=101", 100, 100, "", true},
		{"n=99999999999999999999999999", 100, 100, "", true},
		{"n=500", 0, 500, "", true},
		{"n=5&last=v1.0", 100, 5, "v1.0", true},
		{"last=p%2Frepo", 100, 0, "p/repo", true},
		{"last=", 100, 0, "", true},
		{"n=-1", 100, 0, "", false},
		{"n=%2B1", 100, 0, "", false},
		{"n=1.5", 100, 0, "", false},
		{"n=abc", 100, 0, "", false},
		{"n=%201", 100, 0, "", false},
		{"n=1&n=2", 100, 0, "", false},
		{"last=a&last=b", 100, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			require.NoError(t, err)
			n, last, err := paginationParams(q, tt.max)
			if !tt.ok {
				require.ErrorIs(t, err, errPaginationInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.n, n)
			require.Equal(t, tt.last, last)
		})
	}
}
