package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/pushfn/pushfn/shared/local/awstest"
	"github.com/pushfn/pushfn/shared/local/receiver"
)

// TestIntegrationBenchDeliverDynamoDB runs the bench with the real store path: the same batch
// through the in-memory store and through DynamoDB Local; every push arrives in each pass.
func TestIntegrationBenchDeliverDynamoDB(t *testing.T) {
	t.Parallel()
	awstest.Config(t) // skips unless PUSHFN_INTEGRATION=1; the endpoint comes from the environment
	rc := &receiver.Receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	args := []string{"deliver", "--url", srv.URL, "--n", "40", "--size", "64", "--conc", "8", "--secret", "", "--store", "dynamodb"}
	if err := benchCmd(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	if c := rc.Counts(); c.Received != 80 || c.Distinct != 80 {
		t.Fatalf("receiver counts %+v, want 40 distinct pushes from each pass", c)
	}
}

func TestBenchRefusesUnknownStore(t *testing.T) {
	t.Parallel()
	if err := benchCmd(context.Background(), []string{"deliver", "--store", "redis"}); err == nil {
		t.Fatal("--store redis: no error")
	}
}
