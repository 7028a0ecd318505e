package message_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/message"
)

func ExampleRules_Parse() {
	body := `{"target": {"url": "https://0x7f.1/push", "headers": {"X-Tenant": "a\r\nb"}},
	          "payload": {"user_id": "1"}, "delay_seconds": 901}`
	_, err := message.Rules{}.Parse([]byte(body), time.Now())
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// delay_seconds: is 901; must be from 0 to 900
	// target.headers.X-Tenant: header value must not contain CR or LF
	// target.url: host 127.0.0.1 is a loopback, private, link-local or reserved address
}

func ExampleRules_ParseBatch() {
	body := `{"messages": [
	  {"target": {"url": "https://hooks.example.com/push"}, "payload": 1, "idempotency_key": "a"},
	  {"target": {"url": "ftp://hooks.example.com/"}, "payload": 2, "idempotency_key": "a"}]}`
	_, err := message.Rules{}.ParseBatch([]byte(body), time.Now())
	var invalid *message.InvalidError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// messages[1].idempotency_key: is the same as messages[0]'s; keys must be unique in a batch
	// messages[1].target.url: scheme "ftp" is not allowed; use https
}
