package deliver

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Limits of the visibility collector.
const (
	// visibilityPerCall is the most entries one ChangeMessageVisibilityBatch call takes.
	visibilityPerCall = 10
	// visibilityWindow is how long a change waits for others to share its call: short next to
	// any delay it sets (whole seconds), long enough to gather the changes of records that end
	// together.
	visibilityWindow = 5 * time.Millisecond
	// visibilityCalls bounds the calls in flight at once.
	visibilityCalls = 16
)

// visibility sets the visibility of records handed back to SQS as soon as each verdict is known,
// so a record's retry delay starts when its own delivery ended, not when the slowest record of
// its batch did. Changes are gathered into calls of up to ten, sent when ten are waiting or
// visibilityWindow after the first of them. A change that fails leaves its record to the queue's
// visibility timeout, so it is only logged.
type visibility struct {
	h   *Handler
	ctx context.Context
	sem chan struct{}
	wg  sync.WaitGroup

	mu      sync.Mutex
	pending []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	timer   *time.Timer
	closed  bool
}

// newVisibility returns a collector whose calls run under ctx, the invocation's context.
func (h *Handler) newVisibility(ctx context.Context) *visibility {
	return &visibility{h: h, ctx: ctx, sem: make(chan struct{}, visibilityCalls)}
}

// set asks for record i (msg) to become visible again after d.
func (v *visibility) set(i int, msg *events.SQSMessage, d time.Duration) {
	if v.h.Queue == nil {
		return
	}
	e := sqstypes.ChangeMessageVisibilityBatchRequestEntry{
		Id:                aws.String(strconv.Itoa(i)),
		ReceiptHandle:     aws.String(msg.ReceiptHandle),
		VisibilityTimeout: visibilitySeconds(d),
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pending = append(v.pending, e)
	switch {
	case len(v.pending) >= visibilityPerCall || v.closed:
		v.flushLocked()
	case v.timer == nil:
		v.timer = time.AfterFunc(visibilityWindow, func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			v.flushLocked()
		})
	}
}

// close sends what is pending and waits for every call to end.
func (v *visibility) close() {
	v.mu.Lock()
	v.closed = true
	v.flushLocked()
	v.mu.Unlock()
	v.wg.Wait()
}

// flushLocked starts the call for the pending entries; v.mu is held.
func (v *visibility) flushLocked() {
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	if len(v.pending) == 0 {
		return
	}
	entries := v.pending
	v.pending = nil
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		v.sem <- struct{}{}
		defer func() { <-v.sem }()
		v.send(entries)
	}()
}

func (v *visibility) send(entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry) {
	log := v.h.log()
	out, err := v.h.Queue.ChangeMessageVisibilityBatch(v.ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(v.h.QueueURL), Entries: entries})
	if err != nil {
		log.ErrorContext(v.ctx, "changing visibility failed", "records", len(entries), "error", err.Error())
		return
	}
	for _, f := range out.Failed {
		log.ErrorContext(v.ctx, "changing visibility failed", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code))
	}
}

// maxVisibility is SQS's limit on a visibility timeout: 12 hours.
const maxVisibility = 12 * 60 * 60

// visibilitySeconds rounds d up to whole seconds within SQS's limits.
func visibilitySeconds(d time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	return int32(min(max(s, 0), maxVisibility))
}
