package message

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EncodeEnvelope returns e as JSON, the SQS message body, keeping the payload's bytes exactly as
// accepted (encoding/json would compact them and escape <, > and &), so the target receives
// what the caller sent.
func EncodeEnvelope(e Envelope) ([]byte, error) {
	if !json.Valid(e.Payload) {
		return nil, fmt.Errorf("encode envelope %s: payload is not valid JSON", e.ID)
	}
	payload := e.Payload
	e.Payload = json.RawMessage("0")
	head, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", e.ID, err)
	}
	const marker = `,"payload":0`
	i := bytes.Index(head, []byte(marker))
	if i < 0 {
		return nil, fmt.Errorf("encode envelope %s: payload field not found", e.ID)
	}
	out := make([]byte, 0, len(head)+len(payload))
	out = append(out, head[:i+len(marker)-1]...)
	out = append(out, payload...)
	out = append(out, head[i+len(marker):]...)
	return out, nil
}
