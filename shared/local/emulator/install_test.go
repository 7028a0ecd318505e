package emulator

import (
	"errors"
	"testing"
)

// The browser found is the first of Debian's and other distributions' names on the PATH.
func TestFindBrowser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		present map[string]string
		want    string
	}{
		{name: "Debian's chromium", present: map[string]string{"chromium": "/usr/bin/chromium", "google-chrome": "/opt/chrome"}, want: "/usr/bin/chromium"},
		{name: "Ubuntu's chromium-browser", present: map[string]string{"chromium-browser": "/usr/bin/chromium-browser"}, want: "/usr/bin/chromium-browser"},
		{name: "Google Chrome", present: map[string]string{"google-chrome-stable": "/usr/bin/google-chrome-stable"}, want: "/usr/bin/google-chrome-stable"},
		{name: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ok := findBrowser(func(name string) (string, error) {
				if p, ok := tt.present[name]; ok {
					return p, nil
				}
				return "", errors.New("not found")
			})
			if path != tt.want || ok != (tt.want != "") {
				t.Errorf("findBrowser: %q %v, want %q", path, ok, tt.want)
			}
		})
	}
}
