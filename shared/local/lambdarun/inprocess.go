package lambdarun

import (
	"context"
	"fmt"
	"reflect"

	"github.com/aws/aws-lambda-go/lambda"
)

// InProcess invokes a handler in this process, with the same results as Function.Invoke, so
// that code driving functions (an API or a queue poller) can be tested without building one.
type InProcess struct {
	handler any
}

// NewInProcess wraps handler, any function lambda.Start accepts.
func NewInProcess(handler any) *InProcess {
	return &InProcess{handler: handler}
}

// Invoke calls the handler; its error is reported as the FunctionError aws-lambda-go would post.
func (p *InProcess) Invoke(ctx context.Context, payload []byte) (response []byte, fnErr *FunctionError, err error) {
	defer func() {
		if v := recover(); v != nil {
			response, fnErr, err = nil, &FunctionError{Type: typeName(v), Message: fmt.Sprint(v)}, nil
		}
	}()
	// aws-lambda-go's handler reuses one response buffer, so concurrent invokes each need their own.
	out, err := lambda.NewHandler(p.handler).Invoke(ctx, payload)
	if err != nil {
		return nil, &FunctionError{Type: typeName(err), Message: err.Error()}, nil
	}
	return out, nil, nil
}

func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
