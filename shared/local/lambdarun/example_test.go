package lambdarun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// A Pool runs a built bootstrap binary as Lambda would, up to four invokes at once. Here the
// binary is the package's test function (testdata/fn, built by TestMain), which answers with the
// action its event names; pushfn run builds .pushfn/build/<LogicalId>/bootstrap instead.
func ExampleNewPool() {
	pool := lambdarun.NewPool(lambdarun.Config{
		Name:     "ApiFunction",
		Path:     bootstrap,
		Timeout:  29 * time.Second,
		MemoryMB: 256,
		Env:      map[string]string{"TABLE_NAME": "pushfn-local"},
		Output:   os.Stderr, // the function's own stdout and stderr
	}, 4)
	defer pool.Close()

	for _, event := range []string{`{"action": "echo"}`, `{"action": "error"}`} {
		response, fnErr, err := pool.Invoke(context.Background(), []byte(event))
		switch {
		case err != nil:
			fmt.Println("the invoke did not run:", err)
		case fnErr != nil:
			fmt.Println("the function failed:", fnErr.Type, fnErr.Message)
		default:
			var r struct {
				Action string `json:"action"`
			}
			if err := json.Unmarshal(response, &r); err != nil {
				fmt.Println("the response is not JSON:", err)
			}
			fmt.Println("the function answered:", r.Action)
		}
	}
	// Output:
	// the function answered: echo
	// the function failed: errorString the function failed
}
