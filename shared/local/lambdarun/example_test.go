package lambdarun_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// A Pool runs a built bootstrap binary as Lambda would, up to four invokes at once.
func ExampleNewPool() {
	pool := lambdarun.NewPool(lambdarun.Config{
		Name:     "ApiFunction",
		Path:     ".pushfn/build/ApiFunction/bootstrap",
		Timeout:  29 * time.Second,
		MemoryMB: 256,
		Env:      map[string]string{"TABLE_NAME": "pushfn-local"},
		Output:   os.Stderr,
	}, 4)
	defer pool.Close()

	response, fnErr, err := pool.Invoke(context.Background(), []byte(`{"rawPath": "/v1/messages/x"}`))
	switch {
	case err != nil:
		fmt.Println("the invoke did not run:", err)
	case fnErr != nil:
		fmt.Println("the function failed:", fnErr.Type, fnErr.Message)
	default:
		fmt.Println(string(response))
	}
}
