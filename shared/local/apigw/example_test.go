package apigw_test

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/local/apigw"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// A Handler serves a function over HTTP as an API Gateway HTTP API with these routes would.
func ExampleNew() {
	fn := lambdarun.NewInProcess(func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"id":"` + e.PathParameters["id"] + `"}`}, nil
	})
	h := apigw.New(fn, []apigw.Route{{Method: "GET", Path: "/v1/messages/{id}"}})
	srv := &http.Server{Addr: "127.0.0.1:3000", Handler: h}
	_ = srv // srv.ListenAndServe()
}
