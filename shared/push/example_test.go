package push_test

import (
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/push"
)

// A receiver verifies the webhook-signature header with the same secret the sender signs with.
func ExampleVerifier_Verify() {
	key, err := push.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	sig := push.Sign([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	fmt.Println(sig)
	err = push.Verifier{Keys: [][]byte{key}}.Verify("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", sig, body, time.Unix(1614265330, 0))
	fmt.Println(err)
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// <nil>
}
