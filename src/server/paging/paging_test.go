package paging

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	cases := []struct {
		query string
		want  Page
		ok    bool
	}{
		{"", Page{1, DefaultSize}, true},
		{"page=3&page_size=100", Page{3, 100}, true},
		{"page_size=101", Page{}, false},
		{"page=0", Page{}, false},
		{"page=x", Page{}, false},
	}
	for _, tc := range cases {
		q, err := url.ParseQuery(tc.query)
		require.NoError(t, err)
		got, err := Parse(q)
		if !tc.ok {
			require.Error(t, err, tc.query)
			continue
		}
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.want, got)
		require.Equal(t, (tc.want.Number-1)*tc.want.Size, got.Offset())
	}
}

func TestNumber(t *testing.T) {
	for query, want := range map[string]int{"": 1, "page=4": 4, "page=0": 1, "page=-2": 1, "page=x": 1, "page=9999999999": 1} {
		q, err := url.ParseQuery(query)
		require.NoError(t, err)
		require.Equal(t, want, Number(q), query)
	}
}

func TestSetHeaders(t *testing.T) {
	cases := []struct {
		page  Page
		total int64
		link  string
	}{
		{Page{1, 10}, 5, ""},
		{Page{1, 10}, 25, `</l?page=2&page_size=10&q=x>; rel="next"`},
		{Page{2, 10}, 25, `</l?page=1&page_size=10&q=x>; rel="prev" , </l?page=3&page_size=10&q=x>; rel="next"`},
		{Page{3, 10}, 25, `</l?page=2&page_size=10&q=x>; rel="prev"`},
		{Page{9, 10}, 25, ""}, // beyond the end: no neighbour holds anything
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		SetHeaders(w, httptest.NewRequest(http.MethodGet, "/l?q=x", nil), tc.total, tc.page)
		require.Equal(t, tc.link, w.Header().Get("Link"), "%+v of %d", tc.page, tc.total)
		require.Equal(t, strconv.FormatInt(tc.total, 10), w.Header().Get("X-Total-Count"))
	}
}
