package console

import (
	"net/http"
	"strconv"
)

// pager links the neighbouring pages of a list, keeping the other query parameters.
type pager struct {
	Page, Pages int
	Total       int64
	Prev, Next  string // "" when there is none
}

// pageNumber reads ?page (1 when absent or invalid).
func pageNumber(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 || n > 1<<20 {
		return 1
	}
	return n
}

func newPager(r *http.Request, page, size int, total int64) pager {
	p := pager{Page: page, Total: total, Pages: max(1, int((total+int64(size)-1)/int64(size)))}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if page > 1 {
		p.Prev = link(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.Next = link(page + 1)
	}
	return p
}
