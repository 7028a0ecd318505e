package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pushfn/pushfn/shared/queue"
)

// fakeSQS records every SendMessageBatch and answers with respond, or queues everything.
type fakeSQS struct {
	respond func(call int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)

	mu    sync.Mutex
	calls [][]types.SendMessageBatchRequestEntry
}

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, slices.Clone(in.Entries))
	f.mu.Unlock()
	if aws.ToString(in.QueueUrl) != queueURL {
		return nil, fmt.Errorf("queue URL %q", aws.ToString(in.QueueUrl))
	}
	if f.respond != nil {
		return f.respond(call, in)
	}
	return succeed(in, nil), nil
}

// bodies returns the bodies of every call, in call order.
func (f *fakeSQS) bodies() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.calls))
	for i, c := range f.calls {
		for _, e := range c {
			out[i] = append(out[i], aws.ToString(e.MessageBody))
		}
	}
	return out
}

// succeed answers in: the entries fail picks fail with its error entry, the others succeed,
// listed in reverse so that callers cannot rely on the order of the answer.
func succeed(in *sqs.SendMessageBatchInput, fail func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry) *sqs.SendMessageBatchOutput {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range slices.Backward(in.Entries) {
		if fail != nil {
			if f := fail(e); f != nil {
				f.Id = e.Id
				out.Failed = append(out.Failed, *f)
				continue
			}
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out
}

const queueURL = "http://127.0.0.1:1/000000000000/q"

func newProducer(api queue.API) *queue.Producer {
	p := queue.NewProducer(api, queueURL)
	p.BaseDelay = time.Microsecond
	p.MaxDelay = 10 * time.Microsecond
	return p
}

func entries(n, size int) []queue.Entry {
	out := make([]queue.Entry, n)
	for i := range out {
		b := fmt.Sprintf("m%03d-", i)
		out[i] = queue.Entry{Body: b + strings.Repeat("x", max(size-len(b), 0))}
	}
	return out
}

func wantAllNil(t *testing.T, errs []error, n int) {
	t.Helper()
	if len(errs) != n {
		t.Fatalf("got %d outcomes, want %d", len(errs), n)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
}

func TestSendChunks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		n, size   int
		maxBytes  int
		wantSizes []int
	}{
		{"one", 1, 10, 0, []int{1}},
		{"exactly_ten", 10, 10, 0, []int{10}},
		{"by_count", 25, 10, 0, []int{10, 10, 5}},
		{"by_bytes", 5, 40, 100, []int{2, 2, 1}},
		{"bytes_at_limit", 4, 50, 100, []int{2, 2}},
		{"one_per_request", 3, 100, 100, []int{1, 1, 1}},
		{"count_before_bytes", 12, 10, 1000, []int{10, 2}},
		{"default_limit_by_bytes", 3, 400 << 10, 0, []int{2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeSQS{}
			p := newProducer(fake)
			p.Concurrency = 1 // requests in entry order, so the chunks can be compared
			if tc.maxBytes > 0 {
				p.MaxBatchBytes = tc.maxBytes
			}
			in := entries(tc.n, tc.size)
			wantAllNil(t, p.Send(context.Background(), in), tc.n)
			var sizes []int
			var sent []string
			for _, call := range fake.bodies() {
				sizes = append(sizes, len(call))
				sent = append(sent, call...)
			}
			if !slices.Equal(sizes, tc.wantSizes) {
				t.Errorf("request sizes = %v, want %v", sizes, tc.wantSizes)
			}
			var want []string
			for _, e := range in {
				want = append(want, e.Body)
			}
			if !slices.Equal(sent, want) {
				t.Errorf("bodies sent out of order or not exactly once")
			}
		})
	}
}

func TestSendRefusesWithoutRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		entry queue.Entry
	}{
		{"empty_body", queue.Entry{}},
		{"too_large", queue.Entry{Body: strings.Repeat("x", 101)}},
		{"negative_delay", queue.Entry{Body: "x", DelaySeconds: -1}},
		{"delay_over_900", queue.Entry{Body: "x", DelaySeconds: 901}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeSQS{}
			p := newProducer(fake)
			p.MaxBatchBytes = 100
			errs := p.Send(context.Background(), []queue.Entry{{Body: "before"}, tc.entry, {Body: "after", DelaySeconds: 900}})
			if errs[0] != nil || errs[2] != nil {
				t.Errorf("the valid entries: %v, %v", errs[0], errs[2])
			}
			if !errors.Is(errs[1], queue.ErrPermanent) || errors.Is(errs[1], queue.ErrRetryable) {
				t.Errorf("refused entry: %v, want ErrPermanent only", errs[1])
			}
			if got := fake.bodies(); len(got) != 1 || !slices.Equal(got[0], []string{"before", "after"}) {
				t.Errorf("requests = %q, want one with before and after", got)
			}
		})
	}
}

func TestSendRetriesFailedEntries(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(call int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return succeed(in, func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			// m001 fails twice, then goes through.
			if strings.HasPrefix(aws.ToString(e.MessageBody), "m001") && call < 2 {
				return &types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("try again")}
			}
			return nil
		}), nil
	}}
	p := newProducer(fake)
	wantAllNil(t, p.Send(context.Background(), entries(3, 10)), 3)
	got := fake.bodies()
	if len(got) != 3 || len(got[0]) != 3 || len(got[1]) != 1 || len(got[2]) != 1 || got[2][0] != got[1][0] {
		t.Errorf("requests = %q, want the three entries, then the failed one twice", got)
	}
}

func TestSendGivesUpAfterMaxTries(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return succeed(in, func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			if strings.HasPrefix(aws.ToString(e.MessageBody), "m000") {
				return &types.BatchResultErrorEntry{Code: aws.String("ServiceUnavailable"), Message: aws.String("busy")}
			}
			return nil
		}), nil
	}}
	p := newProducer(fake)
	p.MaxTries = 3
	errs := p.Send(context.Background(), entries(2, 10))
	if errs[1] != nil {
		t.Errorf("entry 1: %v", errs[1])
	}
	var qe *queue.Error
	if !errors.Is(errs[0], queue.ErrRetryable) || !errors.As(errs[0], &qe) {
		t.Fatalf("entry 0: %v, want a retryable *queue.Error", errs[0])
	}
	if qe.Code != "ServiceUnavailable" || qe.Tries != 3 || qe.Permanent {
		t.Errorf("entry 0: %+v, want code ServiceUnavailable after 3 tries", qe)
	}
	if n := len(fake.bodies()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestSendSenderFaultIsPermanent(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return succeed(in, func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			if strings.HasPrefix(aws.ToString(e.MessageBody), "m001") {
				return &types.BatchResultErrorEntry{Code: aws.String("InvalidMessageContents"), Message: aws.String("bad"), SenderFault: true}
			}
			return nil
		}), nil
	}}
	errs := newProducer(fake).Send(context.Background(), entries(3, 10))
	var qe *queue.Error
	if !errors.Is(errs[1], queue.ErrPermanent) || !errors.As(errs[1], &qe) || qe.Code != "InvalidMessageContents" || qe.Tries != 1 {
		t.Errorf("entry 1: %v, want a permanent InvalidMessageContents after 1 try", errs[1])
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("entries 0 and 2: %v, %v", errs[0], errs[2])
	}
	if n := len(fake.bodies()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry of a sender fault)", n)
	}
}

func TestSendCallErrorFailsItsChunk(t *testing.T) {
	t.Parallel()
	callErr := errors.New("connection reset")
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if strings.HasPrefix(aws.ToString(in.Entries[0].MessageBody), "m010") {
			return nil, callErr
		}
		return succeed(in, nil), nil
	}}
	errs := newProducer(fake).Send(context.Background(), entries(25, 10))
	for i, err := range errs {
		inFailed := i >= 10 && i < 20
		switch {
		case inFailed && (!errors.Is(err, callErr) || !errors.Is(err, queue.ErrRetryable)):
			t.Errorf("entry %d: %v, want retryable wrapping the call's error", i, err)
		case !inFailed && err != nil:
			t.Errorf("entry %d: %v", i, err)
		}
	}
	if n := len(fake.bodies()); n != 3 {
		t.Errorf("%d requests, want 3 (the SDK retries a failed call, the producer does not)", n)
	}
}

func TestSendOutcomesInEntryOrder(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		return succeed(in, func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			var i int
			fmt.Sscanf(aws.ToString(e.MessageBody), "m%03d-", &i)
			if i%3 == 0 {
				return &types.BatchResultErrorEntry{Code: aws.String(fmt.Sprint(i)), SenderFault: true}
			}
			return nil
		}), nil
	}}
	errs := newProducer(fake).Send(context.Background(), entries(47, 10))
	for i, err := range errs {
		var qe *queue.Error
		if i%3 != 0 {
			if err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		} else if !errors.As(err, &qe) || qe.Code != fmt.Sprint(i) {
			t.Errorf("entry %d: %v, want the error SQS gave for it", i, err)
		}
	}
}

func TestSendMissingResultIsRetried(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(call int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		out := succeed(in, nil)
		if call == 0 {
			out.Successful = out.Successful[1:] // one entry left out of the answer
		}
		return out, nil
	}}
	wantAllNil(t, newProducer(fake).Send(context.Background(), entries(4, 10)), 4)
	if got := fake.bodies(); len(got) != 2 || len(got[1]) != 1 {
		t.Errorf("requests = %q, want the entry without a result sent again alone", got)
	}
}

func TestSendCanceledDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		cancel()
		return succeed(in, func(types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			return &types.BatchResultErrorEntry{Code: aws.String("InternalError")}
		}), nil
	}}
	p := newProducer(fake)
	p.BaseDelay, p.MaxDelay = time.Hour, time.Hour
	errs := p.Send(ctx, entries(2, 10))
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) || !errors.Is(err, queue.ErrRetryable) {
			t.Errorf("entry %d: %v, want retryable wrapping context.Canceled", i, err)
		}
	}
	if n := len(fake.bodies()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestSendPanicFailsOnlyItsChunk(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if strings.HasPrefix(aws.ToString(in.Entries[0].MessageBody), "m000") {
			panic("boom")
		}
		return succeed(in, nil), nil
	}}
	errs := newProducer(fake).Send(context.Background(), entries(15, 10))
	for i, err := range errs {
		if (i < 10) != (err != nil) {
			t.Errorf("entry %d: %v", i, err)
		}
	}
}

func TestSendBoundsConcurrency(t *testing.T) {
	t.Parallel()
	const bound = 3
	started := make(chan struct{}, 100)
	release := make(chan struct{})
	var mu sync.Mutex
	inflight, peak := 0, 0
	fake := &fakeSQS{respond: func(_ int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		mu.Unlock()
		started <- struct{}{}
		<-release
		mu.Lock()
		inflight--
		mu.Unlock()
		return succeed(in, nil), nil
	}}
	p := newProducer(fake)
	p.Concurrency = bound
	done := make(chan []error)
	go func() { done <- p.Send(context.Background(), entries(100, 10)) }()
	for range bound {
		<-started
	}
	close(release)
	wantAllNil(t, <-done, 100)
	if peak != bound {
		t.Errorf("peak requests in flight = %d, want %d", peak, bound)
	}
}

func TestSendEmpty(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{}
	if errs := newProducer(fake).Send(context.Background(), nil); len(errs) != 0 {
		t.Errorf("Send(nil) = %v", errs)
	}
	if n := len(fake.bodies()); n != 0 {
		t.Errorf("%d requests for no entries", n)
	}
}

func TestSendPanicOnRetryKeepsQueuedEntries(t *testing.T) {
	t.Parallel()
	fake := &fakeSQS{respond: func(call int, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		if call > 0 {
			panic("boom")
		}
		return succeed(in, func(e types.SendMessageBatchRequestEntry) *types.BatchResultErrorEntry {
			if strings.HasPrefix(aws.ToString(e.MessageBody), "m001") {
				return &types.BatchResultErrorEntry{Code: aws.String("InternalError")}
			}
			return nil
		}), nil
	}}
	errs := newProducer(fake).Send(context.Background(), entries(3, 10))
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("queued entries reported failed: %v, %v", errs[0], errs[2])
	}
	if !errors.Is(errs[1], queue.ErrRetryable) {
		t.Errorf("entry 1: %v, want retryable", errs[1])
	}
}
