package endpoint_test

import (
	"fmt"
	"time"

	"github.com/pushfn/pushfn/shared/endpoint"
)

func ExampleMatch() {
	subscribed := []string{"order.*", "invoice.paid"}
	for _, t := range []string{"order.shipped", "order", "invoice.paid", "invoice.void"} {
		fmt.Println(t, endpoint.Match(subscribed, t))
	}
	fmt.Println("no filter:", endpoint.Match(nil, "anything"))
	// Output:
	// order.shipped true
	// order false
	// invoice.paid true
	// invoice.void false
	// no filter: true
}

func ExampleRecord_ActiveSecrets() {
	keyring, err := endpoint.NewKeyring("an ENDPOINT_SECRETS_KEY of at least 32 characters")
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := endpoint.Record{Endpoint: endpoint.Endpoint{ID: endpoint.NewID(now)}}
	rec.Secret = keyring.Seal(rec.ID, endpoint.GenerateSecret())

	rec.Rotate(keyring, endpoint.GenerateSecret(), now)
	during, _ := rec.ActiveSecrets(keyring, now.Add(time.Hour))
	after, _ := rec.ActiveSecrets(keyring, now.Add(endpoint.RotationOverlap))
	fmt.Println(len(during), "secrets sign an hour after the rotation,", len(after), "a day after")
	fmt.Println(during[0]) // a secret never prints
	// Output:
	// 2 secrets sign an hour after the rotation, 1 a day after
	// whsec_[redacted]
}
