// Command testsummary reads the `go test -json` output of make test and prints how many tests
// passed, failed and were skipped, the integration tests (TestIntegration*) apart. It exits 1
// when any test or package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
}

type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

func (c *counts) add(action string) {
	switch action {
	case "pass":
		c.passed++
	case "fail":
		c.failed++
	case "skip":
		c.skipped++
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testsummary FILE.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	defer f.Close()
	all, integration, failedPackages, err := summarise(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failedPackages > 0 {
		fmt.Printf("packages that failed to build or whose tests failed outside a test: %d\n", failedPackages)
		all.failed += failedPackages
	}
	fmt.Printf("integration tests (TestIntegration*, against the emulators): %s\n", integration)
	fmt.Println(all)
	if all.failed > 0 {
		os.Exit(1)
	}
}

// summarise counts each test's final outcome, subtests included.
func summarise(r io.Reader) (all, integration counts, failedPackages int, err error) {
	type key struct{ pkg, test string }
	final := map[key]string{}
	failedTests := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a line of build output, not an event
		}
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		if e.Test == "" {
			if e.Action == "fail" && !failedTests[e.Package] && e.Package != "" {
				failedPackages++
			}
			continue
		}
		final[key{e.Package, e.Test}] = e.Action
		if e.Action == "fail" {
			failedTests[e.Package] = true
		}
	}
	if err := sc.Err(); err != nil {
		return all, integration, 0, fmt.Errorf("read test events: %w", err)
	}
	for k, action := range final {
		all.add(action)
		if top, _, _ := strings.Cut(k.test, "/"); strings.HasPrefix(top, "TestIntegration") {
			integration.add(action)
		}
	}
	return all, integration, failedPackages, nil
}
