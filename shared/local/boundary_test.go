package local

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pushfn/pushfn/"

// localOnly reports why pkg must never be linked into a deployed function, or "" when it may be.
func localOnly(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, module+"shared/local/") || pkg == module+"shared/local":
		return "local tooling"
	case pkg == "testing" || strings.HasPrefix(pkg, "testing/"):
		return "the testing package"
	case strings.HasPrefix(pkg, module) && strings.HasSuffix(pkg, "test"):
		return "a test helper"
	}
	return ""
}

func TestLocalOnly(t *testing.T) {
	t.Parallel()
	for pkg, want := range map[string]bool{
		module + "shared/local/esm":           true,
		module + "shared/local/awstest":       true,
		module + "shared/ingest/ingesttest":   true,
		module + "shared/store/storetest":     true,
		"testing":                             true,
		"testing/fstest":                      true,
		module + "shared/push":                false,
		module + "shared/localize":            false,
		"github.com/aws/aws-lambda-go/lambda": false,
		"github.com/aws/smithy-go/middleware": false,
		"net/http/httptest":                   false, // not ours; it would need testing to matter
	} {
		if got := localOnly(pkg) != ""; got != want {
			t.Errorf("localOnly(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// TestFunctionsLinkNoLocalTooling lists, for each function as make build builds it, every package
// it links, and fails naming any that serves only local runs or tests.
func TestFunctionsLinkNoLocalTooling(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fns, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil || len(fns) == 0 {
		t.Fatalf("no functions found under %s/functions (err %v)", root, err)
	}
	for _, f := range fns {
		pkg := "./" + filepath.ToSlash(mustRel(t, root, filepath.Dir(f)))
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "-f", "{{.ImportPath}}", pkg)
			cmd.Dir = root
			cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", pkg, errText(err))
			}
			deps := strings.Fields(string(out))
			if !slices.Contains(deps, "github.com/aws/aws-lambda-go/lambda") {
				t.Fatalf("go list -deps %s does not list aws-lambda-go/lambda: is it a function? %q", pkg, deps)
			}
			for _, d := range deps {
				if why := localOnly(d); why != "" {
					t.Errorf("%s links %s, %s: only local runs and tests may import it", pkg, d, why)
				}
			}
		})
	}
}

func mustRel(t *testing.T, base, target string) string {
	t.Helper()
	rel, err := filepath.Rel(base, target)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}
