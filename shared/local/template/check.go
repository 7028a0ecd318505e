package template

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/pushfn/pushfn/shared/config"
)

// Rule names a check of Check.
type Rule string

// The rules Check applies.
const (
	RuleBuildTarget     Rule = "build-target"      // every function has a build-<LogicalId> Makefile target
	RuleEnvKnown        Rule = "env-known"         // every environment variable is one config.Load reads
	RuleEnvValid        Rule = "env-valid"         // the environment's defaults load without error
	RuleBatchFailures   Rule = "batch-failures"    // every event source mapping reports batch item failures
	RuleVisibility      Rule = "visibility"        // a mapped queue's visibility is at least 6 × its function's timeout
	RuleRedrive         Rule = "redrive"           // a mapped queue redrives above MAX_ATTEMPTS receives
	RuleActions         Rule = "actions"           // policies name exact actions, no wildcards or managed policies
	RuleJSONLogs        Rule = "json-logs"         // every function logs as JSON
	RuleTimeoutKnown    Rule = "timeout-known"     // FUNCTION_TIMEOUT, when set, is the function's Timeout
	RuleBatchStarts     Rule = "batch-starts"      // one invocation can start every record of a full batch
	RuleFunctionsMapped Rule = "functions-present" // the template has functions and a mapping at all
	RuleAPIPermission   Rule = "api-permission"    // API Gateway may invoke the function on every route
	RuleEventsGranted   Rule = "events-granted"    // a function with EVENT_BUS_NAME may put events on that bus, and only then
)

// requiredBy lists, per function, the variables it loads as required beyond every function's
// (its main passes them to config.Load).
var requiredBy = map[string][]string{"ApiFunction": config.APIRequired, "DeliverFunction": config.DeliverRequired}

// secretPlaceholder stands for a value resolved from a Secrets Manager secret at deploy (the
// template generates 64 characters).
var secretPlaceholder = strings.Repeat("s", 64)

// Problem is one way the template breaks a rule.
type Problem struct {
	Rule     Rule
	Resource string // logical id
	Detail   string
}

func (p Problem) Error() string { return fmt.Sprintf("%s: %s: %s", p.Rule, p.Resource, p.Detail) }

// Check applies the deployment rules (the Rule constants) to the template, given the Makefile's text, and returns every
// problem found (none for a sound template).
func (t *Template) Check(makefile string) []Problem {
	var ps []Problem
	add := func(r Rule, res, format string, args ...any) {
		ps = append(ps, Problem{Rule: r, Resource: res, Detail: fmt.Sprintf(format, args...)})
	}
	if len(t.Functions) == 0 || len(t.Mappings) == 0 {
		add(RuleFunctionsMapped, "template", "%d functions and %d event source mappings", len(t.Functions), len(t.Mappings))
	}
	known := map[string]bool{}
	for _, n := range config.Names() {
		known[n] = true
	}
	maxAttempts, receiveCounts := map[string]int{}, map[string]int{}
	configs := map[string]config.Config{}
	for _, f := range t.Functions {
		if !regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(f.LogicalID) + `\s*:`).MatchString(makefile) {
			add(RuleBuildTarget, f.LogicalID, "the Makefile has no build-%s target", f.LogicalID)
		}
		env := map[string]string{}
		for _, name := range sortedKeys(f.Env, f.Refs, f.Secrets) {
			// Lambda reserves AWS_* names for itself; none may be set by a template.
			if !known[name] || strings.HasPrefix(name, "AWS_") {
				add(RuleEnvKnown, f.LogicalID, "environment variable %s is not one the configuration loader reads", name)
			}
			env[name] = f.Env[name]
			if res, ok := f.Refs[name]; ok {
				env[name] = res // a resource's name or URL in AWS
			}
			if _, ok := f.Secrets[name]; ok {
				env[name] = secretPlaceholder
			}
		}
		// QUEUE_URL and TABLE_NAME are required in Lambda, and what a function requires beyond
		// them (the api's ENDPOINT_SECRETS_KEY); a function without them fails at init.
		c, err := config.Load(func(k string) string { return env[k] }, requiredBy[f.LogicalID]...)
		if err != nil {
			add(RuleEnvValid, f.LogicalID, "its environment does not load: %v", err)
		}
		maxAttempts[f.LogicalID] = c.MaxAttempts
		receiveCounts[f.LogicalID] = c.MaxReceiveCount
		configs[f.LogicalID] = c
		if c.FunctionTimeout > 0 && c.FunctionTimeout != f.Timeout {
			add(RuleTimeoutKnown, f.LogicalID, "FUNCTION_TIMEOUT is %s but the function's Timeout is %s", c.FunctionTimeout, f.Timeout)
		}
		if f.LogFormat != "JSON" {
			add(RuleJSONLogs, f.LogicalID, "LoggingConfig.LogFormat is %q, want JSON", f.LogFormat)
		}
	}
	queues := t.cf.GetAllSQSQueueResources()
	for id, fn := range t.cf.GetAllServerlessFunctionResources() {
		for _, detail := range eventsProblems(configs[id].EventBusName, fn.Policies) {
			add(RuleEventsGranted, id, "%s", detail)
		}
	}
	for _, m := range t.Mappings {
		if !m.ReportBatchItemFailures {
			add(RuleBatchFailures, m.LogicalID, "FunctionResponseTypes lacks ReportBatchItemFailures")
		}
		f, ok := t.Function(m.Function)
		q, qok := queues[m.Queue]
		if !ok || !qok {
			add(RuleVisibility, m.LogicalID, "maps queue %q to function %q, not both in the template", m.Queue, m.Function)
			continue
		}
		visibility := 30 // SQS's default
		if q.VisibilityTimeout != nil {
			visibility = *q.VisibilityTimeout
		}
		if timeout := int(f.Timeout.Seconds()); visibility < 6*timeout {
			add(RuleVisibility, m.Queue, "visibility timeout %d s is under 6 × %s's timeout (%d s)", visibility, f.LogicalID, timeout)
		}
		// A record not started before the deadline is received again with no attempt made; if
		// that could happen in normal operation, a busy queue could spend a record's redrive
		// margin on receives alone. Each slot runs items one after another, each bounded by
		// REQUEST_TIMEOUT plus the reserve, so a full batch starts if the slots of one host
		// (every record may go to one host) cover it.
		if c := configs[f.LogicalID]; c.RequestTimeout > 0 {
			perSlot := int((f.Timeout - config.DeliverReserve) / (c.RequestTimeout + config.DeliverReserve))
			if starts := min(c.MaxConcurrency, c.MaxPerHost) * perSlot; m.BatchSize > starts {
				add(RuleBatchStarts, m.LogicalID, "BatchSize %d is above the %d records %s can surely start in one invocation (min(MAX_CONCURRENCY, MAX_PER_HOST) × %d per slot)", m.BatchSize, starts, f.LogicalID, perSlot)
			}
		}
		receives, ok := maxReceiveCount(q.RedrivePolicy)
		switch {
		case !ok:
			add(RuleRedrive, m.Queue, "no redrive policy with a maxReceiveCount")
		case receives <= maxAttempts[f.LogicalID]:
			add(RuleRedrive, m.Queue, "maxReceiveCount %d is not above %s's MAX_ATTEMPTS (%d)", receives, f.LogicalID, maxAttempts[f.LogicalID])
		case receiveCounts[f.LogicalID] != 0 && receiveCounts[f.LogicalID] != receives:
			add(RuleRedrive, m.Queue, "maxReceiveCount %d is not %s's MAX_RECEIVE_COUNT (%d)", receives, f.LogicalID, receiveCounts[f.LogicalID])
		}
	}
	for id, fn := range t.cf.GetAllServerlessFunctionResources() {
		for _, detail := range policyProblems(fn.Policies) {
			add(RuleActions, id, "%s", detail)
		}
	}
	for id, p := range t.cf.GetAllIAMPolicyResources() {
		for _, detail := range statementProblems(p.PolicyDocument) {
			add(RuleActions, id, "%s", detail)
		}
	}
	for id, r := range t.cf.GetAllIAMRoleResources() {
		if len(r.ManagedPolicyArns) > 0 {
			add(RuleActions, id, "managed policies %v: grant exact actions instead", r.ManagedPolicyArns)
		}
		for _, p := range r.Policies {
			for _, detail := range statementProblems(p.PolicyDocument) {
				add(RuleActions, id, "%s", detail)
			}
		}
	}
	for _, detail := range t.permissionProblems() {
		add(RuleAPIPermission, detail[0], "%s", detail[1])
	}
	dashboard, annotations := t.dashboardProblems()
	for _, detail := range dashboard {
		add(RuleDashboard, "Dashboard", "%s", detail)
	}
	for _, detail := range t.alarmProblems(annotations) {
		add(RuleAlarms, "alarms", "%s", detail)
	}
	for _, detail := range t.billingProblems() {
		add(RuleBillingMode, "Table", "%s", detail)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Rule < ps[j].Rule })
	return ps
}

// permissionProblems lists the routes that API Gateway could not invoke the function on: each
// route's execute-api ARN must match the source ARN of a permission granted to
// apigateway.amazonaws.com, else that route answers API Gateway's own 500. It returns pairs of
// (logical id, detail). The template has one HTTP API, so every route is checked against every
// such permission.
func (t *Template) permissionProblems() [][2]string {
	var globs []*regexp.Regexp
	var out [][2]string
	for id, p := range t.cf.GetAllLambdaPermissionResources() {
		if p.Principal != "apigateway.amazonaws.com" {
			continue
		}
		if p.SourceArn == nil {
			out = append(out, [2]string{id, "no SourceArn: any API in the account could invoke the function"})
			continue
		}
		globs = append(globs, routeGlob(*p.SourceArn))
	}
	for id, r := range t.cf.GetAllApiGatewayV2RouteResources() {
		path := "$default/" + routePath(r.RouteKey)
		if !slices.ContainsFunc(globs, func(g *regexp.Regexp) bool { return g.MatchString(path) }) {
			out = append(out, [2]string{id, fmt.Sprintf("route %q (%s) is not covered by any API Gateway permission's SourceArn", r.RouteKey, path)})
		}
	}
	return out
}

// routeGlob turns the part of an execute-api source ARN after the API id (stage/method/path, with
// * matching anything, slashes included) into a regular expression.
func routeGlob(arn string) *regexp.Regexp {
	rest := arn
	if i := strings.LastIndex(arn, ":"); i >= 0 {
		rest = arn[i+1:]
	}
	if i := strings.Index(rest, "/"); i >= 0 {
		rest = rest[i+1:] // drop the API id, which the template resolves only in AWS
	}
	return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(rest), `\*`, ".*") + "$")
}

// routePath is the method/path part of a route's ARN: "POST /v1/messages" becomes
// "POST/v1/messages", and $default stays $default. Path parameters stand for one segment.
func routePath(key string) string {
	method, path, ok := strings.Cut(key, " ")
	if !ok {
		return key
	}
	return method + regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(path, "x")
}

func sortedKeys(maps ...map[string]string) []string {
	var keys []string
	for _, m := range maps {
		for k := range m {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func maxReceiveCount(policy any) (int, bool) {
	m, ok := policy.(map[string]any)
	if !ok {
		if s, isString := policy.(string); isString { // RedrivePolicy may be a JSON string
			var parsed map[string]any
			if json.Unmarshal([]byte(s), &parsed) == nil {
				return maxReceiveCount(parsed)
			}
		}
		return 0, false
	}
	switch v := m["maxReceiveCount"].(type) {
	case float64:
		return int(v), true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}

// policyProblems lists what in a SAM function's Policies grants more than exact actions: a
// managed policy or SAM policy template (whose actions the check cannot see), or a wildcard.
func policyProblems(p *serverless.Function_Policies) []string {
	if p == nil {
		return nil
	}
	var out []string
	if p.String != nil {
		out = append(out, fmt.Sprintf("managed policy %q: grant exact actions instead", *p.String))
	}
	if p.StringArray != nil {
		// goformation tries every shape of a list, so a list of documents leaves "" entries here.
		for _, name := range *p.StringArray {
			if name != "" {
				out = append(out, fmt.Sprintf("managed policy %q: grant exact actions instead", name))
			}
		}
	}
	if p.SAMPolicyTemplateArray != nil && len(*p.SAMPolicyTemplateArray) > 0 && p.IAMPolicyDocumentArray == nil {
		out = append(out, "SAM policy templates: grant exact actions instead")
	}
	if p.IAMPolicyDocument != nil {
		out = append(out, statementProblems(map[string]any{"Statement": p.IAMPolicyDocument.Statement})...)
	}
	if p.IAMPolicyDocumentArray != nil {
		for _, d := range *p.IAMPolicyDocumentArray {
			out = append(out, statementProblems(map[string]any{"Statement": d.Statement})...)
		}
	}
	return out
}

// statementProblems lists the wildcard actions (and NotAction, which grants everything else) of
// a policy document.
func statementProblems(doc any) []string {
	d, _ := doc.(map[string]any)
	var statements []any
	switch s := d["Statement"].(type) {
	case []any:
		statements = s
	case map[string]any:
		statements = []any{s}
	}
	var out []string
	for i, st := range statements {
		if st == nil {
			continue // an !If that chose AWS::NoValue: no statement
		}
		m, _ := st.(map[string]any)
		if _, ok := m["NotAction"]; ok {
			out = append(out, fmt.Sprintf("statement %d uses NotAction", i))
		}
		var actions []any
		switch a := m["Action"].(type) {
		case string:
			actions = []any{a}
		case []any:
			actions = a
		}
		if len(actions) == 0 {
			out = append(out, fmt.Sprintf("statement %d names no action", i))
		}
		for _, a := range actions {
			if s, _ := a.(string); strings.Contains(s, "*") || s == "" {
				out = append(out, fmt.Sprintf("statement %d grants action %q: name exact actions", i, s))
			}
		}
	}
	return out
}

// eventsProblems lists how a function's policies disagree with its EVENT_BUS_NAME (bus): with a
// bus, events:PutEvents must be granted on that bus and no other resource; without one, not at
// all.
func eventsProblems(bus string, p *serverless.Function_Policies) []string {
	var resources []string
	if p != nil {
		doc, _ := json.Marshal(p)
		var v any
		_ = json.Unmarshal(doc, &v)
		resources = putEventsResources(v)
	}
	switch {
	case bus == "" && len(resources) > 0:
		return []string{fmt.Sprintf("granted events:PutEvents on %v with no EVENT_BUS_NAME", resources)}
	case bus != "" && len(resources) == 0:
		return []string{fmt.Sprintf("EVENT_BUS_NAME is %q but events:PutEvents is not granted", bus)}
	}
	var out []string
	for _, r := range resources {
		if !strings.HasSuffix(r, ":event-bus/"+bus) {
			out = append(out, fmt.Sprintf("events:PutEvents granted on %q, not only on the bus %q", r, bus))
		}
	}
	return out
}

// putEventsResources returns the resources of every statement within v that grants
// events:PutEvents.
func putEventsResources(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		var actions []any
		switch a := x["Action"].(type) {
		case string:
			actions = []any{a}
		case []any:
			actions = a
		}
		if slices.Contains(actions, any("events:PutEvents")) {
			switch r := x["Resource"].(type) {
			case string:
				out = append(out, r)
			case []any:
				for _, e := range r {
					s, _ := e.(string)
					out = append(out, s)
				}
			default:
				out = append(out, fmt.Sprint(r))
			}
		}
		for _, e := range x {
			out = append(out, putEventsResources(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, putEventsResources(e)...)
		}
	}
	return out
}
