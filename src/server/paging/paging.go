// Package paging is the one page rule of Berth's HTTP lists, the REST API's (Harbor's page and
// page_size, X-Total-Count and Link) and the console's: which page a request asks for, where a list
// starts, and the URL of a neighbouring page.
package paging

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// Harbor's paging defaults and limits.
const (
	DefaultSize = 10
	MaxSize     = 100
	maxNumber   = 1 << 30
)

// Page is a 1-based page of a list.
type Page struct {
	Number, Size int
}

// Offset is the index of the page's first item.
func (p Page) Offset() int { return (p.Number - 1) * p.Size }

// Parse reads Harbor's page (default 1) and page_size (default DefaultSize, at most MaxSize); a value
// that is no integer in range is BAD_REQUEST.
func Parse(q url.Values) (Page, error) {
	p := Page{Number: 1, Size: DefaultSize}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"page", &p.Number, maxNumber}, {"page_size", &p.Size, MaxSize}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > f.max {
			return p, errcode.ErrBadRequest.WithMessage("%s must be an integer from 1 to %d, got %q", f.name, f.max, v)
		}
		*f.dst = n
	}
	return p, nil
}

// Number reads page for a list a person browses, leniently: 1 when absent or not an integer in range.
func Number(q url.Values) int {
	n, err := strconv.Atoi(q.Get("page"))
	if err != nil || n < 1 || n > maxNumber {
		return 1
	}
	return n
}

// URL returns r's path and query with page set to n, and page_size to size when size > 0; the other
// query parameters are kept.
func URL(r *http.Request, n, size int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(n))
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// SetHeaders sets X-Total-Count and, when there are neighbouring pages, Harbor's Link header:
// `<path?query>; rel="prev" , <path?query>; rel="next"`.
func SetHeaders(w http.ResponseWriter, r *http.Request, total int64, p Page) {
	w.Header().Set("X-Total-Count", strconv.FormatInt(total, 10))
	var links []string
	size := int64(p.Size)
	if n := int64(p.Number); n > 1 && (n-1)*size < total {
		links = append(links, fmt.Sprintf(`<%s>; rel="prev"`, URL(r, p.Number-1, p.Size)))
	}
	if int64(p.Number)*size < total {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, URL(r, p.Number+1, p.Size)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, " , "))
	}
}
