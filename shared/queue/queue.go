// Package queue puts messages on pushfn's SQS queue: batched sends with per-message outcomes,
// the creation of the queue with its dead-letter queue, and the redrive of that dead-letter
// queue back to the queue.
//
// Ships in the api and relay functions.
package queue

// Entry is one message to send.
type Entry struct {
	Body         string // the SQS message body: a message.Envelope as JSON
	DelaySeconds int    // 0 to 900
}
