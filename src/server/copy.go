package server

import (
	"io"
	"net/http"
)

// copyTo copies r into w, using w's ReaderFrom (sendfile for files) when it has one.
func copyTo(w http.ResponseWriter, r io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w, r)
}
