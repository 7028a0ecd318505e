package apigw_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushfn/pushfn/shared/local/apigw"
	"github.com/pushfn/pushfn/shared/local/lambdarun"
)

// A Handler serves a function over HTTP as an API Gateway HTTP API with these routes would: the
// path parameters reach the function in its event, and a path no route matches never reaches it.
func ExampleNew() {
	fn := lambdarun.NewInProcess(func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"id":"` + e.PathParameters["id"] + `"}`}, nil
	})
	h := apigw.New(fn, []apigw.Route{{Method: "GET", Path: "/v1/messages/{id}"}})
	// Serve it with (&http.Server{Addr: "127.0.0.1:3000", Handler: h}).ListenAndServe().

	for _, path := range []string{"/v1/messages/msg_1", "/v1/elsewhere"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 {"id":"msg_1"}
	// 404 {"message":"Not Found"}
}
