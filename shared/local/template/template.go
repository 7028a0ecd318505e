// Package template reads pushfn's SAM template (template.yaml) into what a local stack needs,
// each function's environment, timeout and memory and the event source mapping's batching, and
// checks it against pushfn's deployment rules (see Check).
//
// Local runs and tests only, never linked into a deployed function (see package local).
package template

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Function is one AWS::Serverless::Function of the template.
type Function struct {
	LogicalID string
	// Env holds the function's environment with parameters resolved to their defaults. A
	// variable that refers to a resource (QUEUE_URL: !Ref Queue) is absent here and named in Refs.
	Env map[string]string
	// Refs maps a variable to the logical id of the resource it refers to, for a local stack to
	// fill in with the local resource (the queue URL, the table name).
	Refs map[string]string
	// Secrets maps a variable set from a Secrets Manager secret of the template (a dynamic
	// reference, "{{resolve:secretsmanager:${Secret}}}", resolved by CloudFormation at deploy) to
	// the secret's logical id, for a local stack to fill in with a local value.
	Secrets   map[string]string
	Timeout   time.Duration // Lambda's default, 3 s, when the template sets none
	MemoryMB  int           // Lambda's default, 128, when the template sets none
	LogFormat string        // LoggingConfig.LogFormat ("JSON" or "Text")
}

// Mapping is an event source mapping from a queue to a function.
type Mapping struct {
	LogicalID               string
	Queue                   string // logical id of the source queue
	Function                string // logical id of the target function
	BatchSize               int
	BatchingWindow          time.Duration
	ReportBatchItemFailures bool
	MaximumConcurrency      int // 0 when unset
}

// Queue is an AWS::SQS::Queue of the template.
type Queue struct {
	LogicalID         string
	VisibilityTimeout time.Duration // SQS's default, 30 s, when the template sets none
	DeadLetterQueue   string        // logical id of the redrive target; empty without one
	MaxReceiveCount   int           // 0 without a redrive policy
}

// Template is the parsed template.
type Template struct {
	Functions []Function // sorted by logical id
	Mappings  []Mapping  // sorted by logical id
	Queues    []Queue    // sorted by logical id
	cf        *cloudformation.Template
}

// Function returns the function with the given logical id.
func (t *Template) Function(id string) (Function, bool) {
	for _, f := range t.Functions {
		if f.LogicalID == id {
			return f, true
		}
	}
	return Function{}, false
}

// Load reads and parses the template file at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// refPrefix marks a value that referred to a resource; no parameter default starts with it.
const refPrefix = "\x00ref:"

// secretPrefix marks a value resolved from a Secrets Manager secret of the template.
const secretPrefix = "\x00secret:"

// dynamicSecret matches a Fn::Sub that is a dynamic reference to a secret of the template.
var dynamicSecret = regexp.MustCompile(`^\{\{resolve:secretsmanager:\$\{([0-9A-Za-z]+)\}\}\}$`)

// processMu serialises goformation's YAML processing, which writes a package-level map of tag
// resolvers on every call.
var processMu sync.Mutex

// Parse parses a SAM template given as YAML, as it would deploy with its parameters' defaults:
// conditions are evaluated, and a resource whose Condition is false is left out. It is safe for
// concurrent use.
func Parse(data []byte) (*Template, error) {
	processMu.Lock()
	processed, err := process(data)
	processMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	processed, err = dropUnmet(processed)
	if err != nil {
		return nil, err
	}
	logFormats, processed, err := stripUnknown(processed)
	if err != nil {
		return nil, err
	}
	cf := &cloudformation.Template{}
	if err := json.Unmarshal(processed, cf); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	t := &Template{cf: cf}
	for id, fn := range cf.GetAllServerlessFunctionResources() {
		f := Function{LogicalID: id, Env: map[string]string{}, Refs: map[string]string{}, Secrets: map[string]string{},
			Timeout: 3 * time.Second, MemoryMB: 128, LogFormat: logFormats[id]}
		if fn.Environment != nil {
			for k, v := range fn.Environment.Variables {
				if res, ok := strings.CutPrefix(v, refPrefix); ok {
					f.Refs[k] = res
				} else if secret, ok := strings.CutPrefix(v, secretPrefix); ok {
					f.Secrets[k] = secret
				} else {
					f.Env[k] = v
				}
			}
		}
		if fn.Timeout != nil {
			f.Timeout = time.Duration(*fn.Timeout) * time.Second
		}
		if fn.MemorySize != nil {
			f.MemoryMB = *fn.MemorySize
		}
		t.Functions = append(t.Functions, f)
	}
	sort.Slice(t.Functions, func(i, j int) bool { return t.Functions[i].LogicalID < t.Functions[j].LogicalID })
	for id, esm := range cf.GetAllLambdaEventSourceMappingResources() {
		m := Mapping{LogicalID: id, Function: resourceID(esm.FunctionName)}
		if esm.EventSourceArn != nil {
			m.Queue = resourceID(*esm.EventSourceArn)
		}
		if esm.BatchSize != nil {
			m.BatchSize = *esm.BatchSize
		}
		if esm.MaximumBatchingWindowInSeconds != nil {
			m.BatchingWindow = time.Duration(*esm.MaximumBatchingWindowInSeconds) * time.Second
		}
		for _, r := range esm.FunctionResponseTypes {
			m.ReportBatchItemFailures = m.ReportBatchItemFailures || r == "ReportBatchItemFailures"
		}
		if esm.ScalingConfig != nil && esm.ScalingConfig.MaximumConcurrency != nil {
			m.MaximumConcurrency = *esm.ScalingConfig.MaximumConcurrency
		}
		t.Mappings = append(t.Mappings, m)
	}
	sort.Slice(t.Mappings, func(i, j int) bool { return t.Mappings[i].LogicalID < t.Mappings[j].LogicalID })
	for id, q := range cf.GetAllSQSQueueResources() {
		queue := Queue{LogicalID: id, VisibilityTimeout: 30 * time.Second}
		if q.VisibilityTimeout != nil {
			queue.VisibilityTimeout = time.Duration(*q.VisibilityTimeout) * time.Second
		}
		if n, ok := maxReceiveCount(q.RedrivePolicy); ok {
			queue.MaxReceiveCount = n
			if rp, ok := q.RedrivePolicy.(map[string]any); ok {
				arn, _ := rp["deadLetterTargetArn"].(string)
				queue.DeadLetterQueue = resourceID(arn)
			}
		}
		t.Queues = append(t.Queues, queue)
	}
	sort.Slice(t.Queues, func(i, j int) bool { return t.Queues[i].LogicalID < t.Queues[j].LogicalID })
	return t, nil
}

// Queue returns the queue with the given logical id.
func (t *Template) Queue(id string) (Queue, bool) {
	for _, q := range t.Queues {
		if q.LogicalID == id {
			return q, true
		}
	}
	return Queue{}, false
}

// process resolves the intrinsic functions of the YAML template data; processMu is held.
func process(data []byte) ([]byte, error) {
	raw, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, err
	}
	// goformation would replace a resource carrying a Condition with the condition's value;
	// wrapped once more, the resource keeps it as its Condition, for dropUnmet.
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	resources, _ := doc["Resources"].(map[string]any)
	for _, r := range resources {
		if res, ok := r.(map[string]any); ok {
			if name, ok := res["Condition"].(string); ok {
				res["Condition"] = map[string]any{"Condition": name}
			}
		}
	}
	if raw, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	return intrinsics.ProcessJSON(raw, &intrinsics.ProcessorOptions{
		// Conditions evaluated with the parameters' defaults, so an !If resolves as it would
		// deploy with them (the events:PutEvents statement only with an EventBusName).
		EvaluateConditions: true,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":        ref,
			"Fn::GetAtt": getAtt,
			"Fn::Sub":    sub,
		},
	})
}

// dropUnmet removes the resources whose Condition evaluated false, as CloudFormation would not
// create them, and the Condition of the others.
func dropUnmet(processed []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(processed, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	resources, _ := doc["Resources"].(map[string]any)
	for id, r := range resources {
		res, _ := r.(map[string]any)
		c, ok := res["Condition"]
		if !ok {
			continue
		}
		met, ok := c.(bool)
		if !ok {
			return nil, fmt.Errorf("parse template: resource %s: Condition %v is not a condition of the template", id, c)
		}
		if !met {
			delete(resources, id)
			continue
		}
		delete(res, "Condition")
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return out, nil
}

// resourceID returns the logical id a resolved Ref or GetAtt names ("Queue" from "Queue.Arn").
func resourceID(v string) string {
	v = strings.TrimPrefix(v, refPrefix)
	id, _, _ := strings.Cut(v, ".")
	return id
}

// ref resolves Ref as goformation does (parameters to their defaults, pseudo parameters to
// examples) but keeps references to resources as refPrefix+id instead of dropping them.
func ref(name string, input, template any) any {
	if v := intrinsics.Ref(name, input, template); v != nil {
		return v
	}
	id, ok := input.(string)
	if !ok {
		return nil
	}
	if tm, ok := template.(map[string]any); ok {
		if res, ok := tm["Resources"].(map[string]any); ok {
			if _, ok := res[id]; ok {
				return refPrefix + id
			}
		}
	}
	return nil
}

// subVariable matches a variable of a Fn::Sub string, ${Name}, ${Name.Attribute} or ${!Literal}.
var subVariable = regexp.MustCompile(`\$\{(!?)([0-9A-Za-z_:.]+)\}`)

// sub resolves Fn::Sub: a parameter becomes its default (a number in its decimal form), a pseudo
// parameter goformation's example value (none for the partition), ${!Literal} the literal
// ${Literal}; a reference to a resource of the template, ${Queue} or ${Queue.QueueName}, stays as
// written, for a check to see what it names (a dashboard's body stays valid JSON). A dynamic
// reference to a secret of the template becomes secretPrefix+id.
func sub(_ string, input, template any) any {
	tm, _ := template.(map[string]any)
	resources, _ := tm["Resources"].(map[string]any)
	var src string
	vars := map[string]any{}
	switch v := input.(type) {
	case string:
		src = v
	case []any: // [string, {name: value}]
		if len(v) != 2 {
			return nil
		}
		src, _ = v[0].(string)
		vars, _ = v[1].(map[string]any)
	default:
		return nil
	}
	if m := dynamicSecret.FindStringSubmatch(src); m != nil {
		if r, ok := resources[m[1]].(map[string]any); ok && r["Type"] == "AWS::SecretsManager::Secret" {
			return secretPrefix + m[1]
		}
	}
	return subVariable.ReplaceAllStringFunc(src, func(match string) string {
		m := subVariable.FindStringSubmatch(match)
		if m[1] == "!" {
			return "${" + m[2] + "}"
		}
		value, ok := vars[m[2]]
		if !ok {
			id, _, _ := strings.Cut(m[2], ".")
			if _, isResource := resources[id]; isResource {
				return match
			}
			value = intrinsics.Ref("Ref", m[2], template)
		}
		switch v := value.(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	})
}

// getAtt resolves Fn::GetAtt to refPrefix+"id.attribute".
func getAtt(_ string, input, _ any) any {
	switch v := input.(type) {
	case string:
		return refPrefix + v
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			s, ok := p.(string)
			if !ok {
				return nil
			}
			parts = append(parts, s)
		}
		return refPrefix + strings.Join(parts, ".")
	}
	return nil
}

// stripUnknown removes the function properties goformation's SAM schema does not know
// (LoggingConfig postdates it, and goformation refuses unknown fields), returning each
// function's LogFormat. It also turns numbers in functions' environments into strings, as
// CloudFormation turns a Number parameter into a string wherever Ref uses it.
func stripUnknown(processed []byte) (map[string]string, []byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(processed, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse template: %w", err)
	}
	formats := map[string]string{}
	resources, _ := doc["Resources"].(map[string]any)
	for id, r := range resources {
		res, _ := r.(map[string]any)
		if res["Type"] != "AWS::Serverless::Function" {
			continue
		}
		props, _ := res["Properties"].(map[string]any)
		if lc, ok := props["LoggingConfig"].(map[string]any); ok {
			formats[id], _ = lc["LogFormat"].(string)
		}
		delete(props, "LoggingConfig")
		if env, ok := props["Environment"].(map[string]any); ok {
			vars, _ := env["Variables"].(map[string]any)
			for k, v := range vars {
				if n, ok := v.(float64); ok {
					vars[k] = strconv.FormatFloat(n, 'f', -1, 64)
				}
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("parse template: %w", err)
	}
	return formats, out, nil
}
