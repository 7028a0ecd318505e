package status

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

// page is the status page: HTML, a script that draws the charts as SVG, and a style sheet,
// all served from the binary so the page works with no network.
//
//go:embed page
var page embed.FS

// Handler serves the page at / (with its script and style sheet) and the figures at
// /status.json, the same Snapshot the page polls every second.
func (b *Board) Handler() http.Handler {
	files, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	static := http.FileServerFS(files)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(b.Snapshot(r.Context()))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		static.ServeHTTP(w, r)
	})
	return mux
}
