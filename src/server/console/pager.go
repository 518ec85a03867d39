package console

import (
	"net/http"

	"github.com/berth-registry/berth/src/server/paging"
)

// pager links the neighbouring pages of a list, keeping the other query parameters.
type pager struct {
	Page, Pages int
	Total       int64
	Prev, Next  string // "" when there is none
}

// pageNumber reads ?page (1 when absent or invalid).
func pageNumber(r *http.Request) int { return paging.Number(r.URL.Query()) }

func newPager(r *http.Request, page, size int, total int64) pager {
	p := pager{Page: page, Total: total, Pages: max(1, int((total+int64(size)-1)/int64(size)))}
	if page > 1 {
		p.Prev = paging.URL(r, min(page-1, p.Pages), 0)
	}
	if page < p.Pages {
		p.Next = paging.URL(r, page+1, 0)
	}
	return p
}
