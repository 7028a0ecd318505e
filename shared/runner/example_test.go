package runner_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/runner"
)

// Items run at most 8 at a time and 2 per host; a failing item affects only its own result.
func ExampleRunner_Run() {
	hosts := []string{"a.example", "b.example", "a.example", "c.example"}
	r := runner.Runner{Limit: 8, PerKey: 2, Timeout: time.Second}
	results := r.Run(context.Background(), len(hosts), func(i int) string { return hosts[i] }, func(ctx context.Context, i int) error {
		if hosts[i] == "c.example" {
			return errors.New("refused")
		}
		return nil
	})
	fmt.Println(results)
	// Output: [<nil> <nil> <nil> refused]
}
