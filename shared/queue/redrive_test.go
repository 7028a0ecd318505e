package queue

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const (
	testQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushfn"
	testQueueARN = "arn:aws:sqs:eu-west-1:123456789012:pushfn"
	testDLQURL   = "https://sqs.eu-west-1.amazonaws.com/123456789012/pushfn-dlq"
	testDLQARN   = "arn:aws:sqs:eu-west-1:123456789012:pushfn-dlq"
)

// fakeAttributes answers GetQueueAttributes from attrs (by queue URL) and GetQueueUrl from urls
// (by account/name).
type fakeAttributes struct {
	attrs  map[string]map[string]string
	urls   map[string]string
	errOn  string // an operation that fails
	called []string
}

var errFake = errors.New("fake SQS failure")

func (f *fakeAttributes) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	f.called = append(f.called, "GetQueueAttributes "+aws.ToString(in.QueueUrl))
	if f.errOn == "GetQueueAttributes" {
		return nil, errFake
	}
	return &sqs.GetQueueAttributesOutput{Attributes: f.attrs[aws.ToString(in.QueueUrl)]}, nil
}

func (f *fakeAttributes) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	key := aws.ToString(in.QueueOwnerAWSAccountId) + "/" + aws.ToString(in.QueueName)
	f.called = append(f.called, "GetQueueUrl "+key)
	u, ok := f.urls[key]
	if !ok || f.errOn == "GetQueueUrl" {
		return nil, errFake
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(u)}, nil
}

var _ AttributesAPI = (*fakeAttributes)(nil)

func newFakeAttributes(policy string) *fakeAttributes {
	q := map[string]string{"QueueArn": testQueueARN}
	if policy != "" {
		q["RedrivePolicy"] = policy
	}
	return &fakeAttributes{
		attrs: map[string]map[string]string{
			testQueueURL: q,
			testDLQURL:   {"ApproximateNumberOfMessages": "7", "ApproximateNumberOfMessagesNotVisible": "2"},
		},
		urls: map[string]string{"123456789012/pushfn-dlq": testDLQURL},
	}
}

func TestDeadLetterQueue(t *testing.T) {
	t.Parallel()
	good := `{"deadLetterTargetArn":"` + testDLQARN + `","maxReceiveCount":5}`
	tests := []struct {
		name    string
		policy  string
		errOn   string
		want    DeadLetter
		wantErr error  // matched with errors.Is
		errText string // what the error must name
	}{
		{name: "found", policy: good, want: DeadLetter{QueueARN: testQueueARN, DLQARN: testDLQARN, DLQURL: testDLQURL, Visible: 7, InFlight: 2}},
		{name: "no redrive policy", wantErr: ErrNoRedrivePolicy, errText: testQueueURL},
		{name: "policy without a target", policy: `{"maxReceiveCount":5}`, wantErr: ErrNoRedrivePolicy, errText: "deadLetterTargetArn"},
		{name: "policy not JSON", policy: `{`, errText: "not JSON"},
		{name: "target not an SQS ARN", policy: `{"deadLetterTargetArn":"arn:aws:sns:eu-west-1:123456789012:topic"}`, errText: "not an SQS queue ARN"},
		{name: "unreachable", policy: good, errOn: "GetQueueAttributes", wantErr: errFake, errText: "read the attributes of queue " + testQueueURL},
		{name: "dead-letter queue gone", policy: good, errOn: "GetQueueUrl", wantErr: errFake, errText: "find dead-letter queue " + testDLQARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAttributes(tt.policy)
			api.errOn = tt.errOn
			got, err := DeadLetterQueue(context.Background(), api, testQueueURL)
			if tt.errText == "" {
				if err != nil || got != tt.want {
					t.Fatalf("DeadLetterQueue = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("DeadLetterQueue error %v, want one naming %q", err, tt.errText)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("DeadLetterQueue error %v is not %v", err, tt.wantErr)
			}
		})
	}
}

func TestDeadLetterQueueBadCount(t *testing.T) {
	t.Parallel()
	api := newFakeAttributes(`{"deadLetterTargetArn":"` + testDLQARN + `"}`)
	api.attrs[testDLQURL]["ApproximateNumberOfMessages"] = ""
	if _, err := DeadLetterQueue(context.Background(), api, testQueueURL); err == nil || !strings.Contains(err.Error(), "ApproximateNumberOfMessages") {
		t.Fatalf("DeadLetterQueue error %v, want one naming ApproximateNumberOfMessages", err)
	}
}

func FuzzSplitQueueARN(f *testing.F) {
	for _, s := range []string{testDLQARN, "arn:aws-cn:sqs:cn-north-1:1:q", "arn:aws:sqs::1:", "", ":::::", "arn:aws:sqs:r:a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arn string) {
		account, name, err := splitQueueARN(arn)
		if err != nil {
			return
		}
		if account == "" || name == "" || strings.Contains(account+name, ":") {
			t.Fatalf("splitQueueARN(%q) = %q, %q", arn, account, name)
		}
		if !strings.HasPrefix(arn, "arn:") || !strings.HasSuffix(arn, ":"+account+":"+name) {
			t.Fatalf("splitQueueARN(%q) = %q, %q: not the ARN's account and name", arn, account, name)
		}
	})
}

// fakeMoveTask answers StartMessageMoveTask with a handle and ListMessageMoveTasks with states,
// one per call, the last repeated.
type fakeMoveTask struct {
	startErr error
	states   []types.ListMessageMoveTasksResultEntry
	started  []*sqs.StartMessageMoveTaskInput
	listed   []*sqs.ListMessageMoveTasksInput
}

func (f *fakeMoveTask) StartMessageMoveTask(_ context.Context, in *sqs.StartMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error) {
	f.started = append(f.started, in)
	if f.startErr != nil {
		return nil, f.startErr
	}
	return &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("task-1")}, nil
}

func (f *fakeMoveTask) ListMessageMoveTasks(_ context.Context, in *sqs.ListMessageMoveTasksInput, _ ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error) {
	f.listed = append(f.listed, in)
	i := min(len(f.listed), len(f.states)) - 1
	if i < 0 {
		return &sqs.ListMessageMoveTasksOutput{}, nil
	}
	return &sqs.ListMessageMoveTasksOutput{Results: []types.ListMessageMoveTasksResultEntry{f.states[i]}}, nil
}

var _ MoveTaskAPI = (*fakeMoveTask)(nil)

func entry(status string, moved, toMove int64, handle string) types.ListMessageMoveTasksResultEntry {
	e := types.ListMessageMoveTasksResultEntry{Status: aws.String(status), ApproximateNumberOfMessagesMoved: moved,
		SourceArn: aws.String(testDLQARN), DestinationArn: aws.String(testQueueARN)}
	if toMove >= 0 {
		e.ApproximateNumberOfMessagesToMove = aws.Int64(toMove)
	}
	if handle != "" {
		e.TaskHandle = aws.String(handle)
	}
	return e
}

func TestRunMoveTask(t *testing.T) {
	t.Parallel()
	failed := entry("FAILED", 4, 10, "")
	failed.FailureReason = aws.String("AWS.SimpleQueueService.NonExistentQueue")
	tests := []struct {
		name         string
		rate         int
		startErr     error
		states       []types.ListMessageMoveTasksResultEntry
		wantProgress []string
		wantErr      string
		wantTaskErr  *MoveTaskError
	}{
		{
			name:         "completed",
			states:       []types.ListMessageMoveTasksResultEntry{entry("RUNNING", 0, -1, "task-1"), entry("RUNNING", 3, 10, "task-1"), entry("COMPLETED", 10, 10, "")},
			wantProgress: []string{"RUNNING 0/-1", "RUNNING 3/10", "COMPLETED 10/10"},
		},
		{
			name: "at a rate", rate: 50,
			states:       []types.ListMessageMoveTasksResultEntry{entry("COMPLETED", 2, 2, "")},
			wantProgress: []string{"COMPLETED 2/2"},
		},
		{
			name:         "failed",
			states:       []types.ListMessageMoveTasksResultEntry{entry("RUNNING", 4, 10, "task-1"), failed},
			wantProgress: []string{"RUNNING 4/10", "FAILED 4/10"},
			wantTaskErr:  &MoveTaskError{Task: MoveTask{Handle: "task-1", Status: "FAILED", Moved: 4, ToMove: 10}, Reason: "AWS.SimpleQueueService.NonExistentQueue"},
		},
		{
			name:         "cancelled",
			states:       []types.ListMessageMoveTasksResultEntry{entry("CANCELLED", 1, 10, "")},
			wantProgress: []string{"CANCELLED 1/10"},
			wantTaskErr:  &MoveTaskError{Task: MoveTask{Handle: "task-1", Status: "CANCELLED", Moved: 1, ToMove: 10}},
		},
		{name: "another task listed", states: []types.ListMessageMoveTasksResultEntry{entry("RUNNING", 0, 10, "task-0")}, wantErr: "another task, task-0"},
		{name: "no task listed", wantErr: "lists no task"},
		{name: "start refused", startErr: errFake, wantErr: "start a message move task from " + testDLQARN + " to " + testQueueARN},
		{name: "rate above SQS's", rate: MaxMoveRate + 1, wantErr: "rate 501 is outside 0 to 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeMoveTask{startErr: tt.startErr, states: tt.states}
			var progress []string
			task, err := RunMoveTask(context.Background(), api, testDLQARN, testQueueARN, tt.rate, 0, func(m MoveTask) {
				progress = append(progress, m.Status+" "+strconv.FormatInt(m.Moved, 10)+"/"+strconv.FormatInt(m.ToMove, 10))
			})
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RunMoveTask error %v, want one saying %q", err, tt.wantErr)
				}
				if tt.startErr != nil && !errors.Is(err, tt.startErr) {
					t.Fatalf("RunMoveTask error %v does not wrap %v", err, tt.startErr)
				}
				return
			case tt.wantTaskErr != nil:
				var te *MoveTaskError
				if !errors.As(err, &te) || *te != *tt.wantTaskErr {
					t.Fatalf("RunMoveTask error %#v, want %#v", err, tt.wantTaskErr)
				}
			case err != nil:
				t.Fatalf("RunMoveTask: %v", err)
			}
			if !slices.Equal(progress, tt.wantProgress) {
				t.Errorf("progress %q, want %q", progress, tt.wantProgress)
			}
			last := tt.states[len(tt.states)-1]
			if task.Status != aws.ToString(last.Status) || task.Moved != last.ApproximateNumberOfMessagesMoved {
				t.Errorf("task %+v, want the last state %s %d", task, aws.ToString(last.Status), last.ApproximateNumberOfMessagesMoved)
			}
			if len(api.started) != 1 {
				t.Fatalf("%d tasks started, want 1", len(api.started))
			}
			in := api.started[0]
			if aws.ToString(in.SourceArn) != testDLQARN || aws.ToString(in.DestinationArn) != testQueueARN {
				t.Errorf("task from %s to %s, want from the dead-letter queue %s to the queue %s",
					aws.ToString(in.SourceArn), aws.ToString(in.DestinationArn), testDLQARN, testQueueARN)
			}
			if got := int(aws.ToInt32(in.MaxNumberOfMessagesPerSecond)); got != tt.rate || (tt.rate == 0) != (in.MaxNumberOfMessagesPerSecond == nil) {
				t.Errorf("MaxNumberOfMessagesPerSecond %v, want %d (unset for 0)", in.MaxNumberOfMessagesPerSecond, tt.rate)
			}
			for _, l := range api.listed {
				if aws.ToString(l.SourceArn) != testDLQARN {
					t.Errorf("listed the tasks of %s, want %s", aws.ToString(l.SourceArn), testDLQARN)
				}
			}
		})
	}
}

func TestRunMoveTaskCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	api := &fakeMoveTask{states: []types.ListMessageMoveTasksResultEntry{entry("RUNNING", 1, 10, "task-1")}}
	_, err := RunMoveTask(ctx, api, testDLQARN, testQueueARN, 0, 0, func(MoveTask) { cancel() })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "goes on in SQS") {
		t.Fatalf("RunMoveTask error %v, want context.Canceled saying the task goes on", err)
	}
}

// fakeMover is a source queue of bodies, a destination that refuses the bodies in refuse, and
// a delete that fails for the bodies in undeletable.
type fakeMover struct {
	src         []string
	dst         []string
	refuse      map[string]bool
	undeletable map[string]bool
	held        map[string]bool // received, not deleted
	deleted     []string
}

func (f *fakeMover) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	var out sqs.ReceiveMessageOutput
	for _, b := range f.src {
		if len(out.Messages) == int(in.MaxNumberOfMessages) {
			break
		}
		if !f.held[b] {
			f.held[b] = true
			out.Messages = append(out.Messages, types.Message{MessageId: aws.String("id-" + b), ReceiptHandle: aws.String("rh-" + b), Body: aws.String(b)})
		}
	}
	return &out, nil
}

func (f *fakeMover) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	var out sqs.SendMessageBatchOutput
	for _, e := range in.Entries {
		if b := aws.ToString(e.MessageBody); f.refuse[b] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
		} else {
			f.dst = append(f.dst, b)
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
		}
	}
	return &out, nil
}

func (f *fakeMover) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	var out sqs.DeleteMessageBatchOutput
	for _, e := range in.Entries {
		b := strings.TrimPrefix(aws.ToString(e.ReceiptHandle), "rh-")
		if f.undeletable[b] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
			continue
		}
		f.deleted = append(f.deleted, b)
		f.src = slices.DeleteFunc(f.src, func(s string) bool { return s == b })
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return &out, nil
}

var _ MoveAPI = (*fakeMover)(nil)

func bodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "m" + strconv.Itoa(i)
	}
	return out
}

func TestMove(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		n, max       int
		refuse       []string
		undeletable  []string
		wantMoved    int
		wantLeft     int // in the source
		wantDst      int
		wantErr      string
		wantProgress []int
	}{
		{name: "empty", wantProgress: nil},
		{name: "all, in batches of 10", n: 23, wantMoved: 23, wantDst: 23, wantProgress: []int{10, 20, 23}},
		{name: "at most max", n: 23, max: 12, wantMoved: 12, wantLeft: 11, wantDst: 12, wantProgress: []int{10, 12}},
		{name: "a refused send stays in the source", n: 3, refuse: []string{"m1"}, wantMoved: 2, wantLeft: 1, wantDst: 2, wantErr: "send message id-m1", wantProgress: []int{2}},
		{name: "all refused", n: 2, refuse: []string{"m0", "m1"}, wantLeft: 2, wantErr: "left in src"},
		{name: "a failed delete leaves a copy in both", n: 2, undeletable: []string{"m0"}, wantMoved: 1, wantLeft: 1, wantDst: 2, wantErr: "now in both queues", wantProgress: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeMover{src: bodies(tt.n), refuse: map[string]bool{}, undeletable: map[string]bool{}, held: map[string]bool{}}
			for _, b := range tt.refuse {
				api.refuse[b] = true
			}
			for _, b := range tt.undeletable {
				api.undeletable[b] = true
			}
			var progress []int
			moved, err := Move(context.Background(), api, "src", "dst", tt.max, func(n int) { progress = append(progress, n) })
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Move error %v, want %q", err, tt.wantErr)
			}
			if moved != tt.wantMoved || len(api.src) != tt.wantLeft || len(api.dst) != tt.wantDst {
				t.Errorf("moved %d, %d left in the source, %d in the destination; want %d, %d, %d",
					moved, len(api.src), len(api.dst), tt.wantMoved, tt.wantLeft, tt.wantDst)
			}
			if !slices.Equal(progress, tt.wantProgress) {
				t.Errorf("progress %v, want %v", progress, tt.wantProgress)
			}
			for _, b := range api.deleted {
				if !slices.Contains(api.dst, b) {
					t.Errorf("%s deleted from the source but never sent", b)
				}
			}
		})
	}
	if _, err := Move(context.Background(), &fakeMover{}, "src", "dst", -1, nil); err == nil || !strings.Contains(err.Error(), "max -1") {
		t.Errorf("Move with max -1: %v, want an error naming max", err)
	}
}
