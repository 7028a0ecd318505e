package template

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushfn/pushfn/shared/message"
	"github.com/pushfn/pushfn/shared/metrics"
)

// The rules Check applies to what the stack shows and tells of itself.
const (
	RuleDashboard   Rule = "dashboard"    // the dashboard names only metrics that are written, and every one that matters
	RuleAlarms      Rule = "alarms"       // the alarms watch the queue's age, the dead-letter queue and the deliver function's errors
	RuleBillingMode Rule = "billing-mode" // the table's capacity settings and auto scaling follow its billing mode
)

// The functions of the template, by logical id.
const (
	apiFunction     = "ApiFunction"
	deliverFunction = "DeliverFunction"
	relayFunction   = "RelayFunction"
)

// written is what the functions write of one metric in the namespace metrics.Namespace.
type written struct {
	unit      string
	dim       string   // the dimension it is kept under beyond service and function, if any
	values    []string // the values it takes there; nil: any (an error code, an AWS operation)
	functions []string // logical ids of the functions that write it
}

// codeMetrics is what the functions write (shared/deliver's and shared/httpapi's metrics.go, the
// relay, and shared/awscount's middleware in every function's SDK clients): the deliver
// function's metrics per invocation, the api's and relay's per request or event, and every
// function's AWS requests by operation.
var codeMetrics = map[string]written{
	metrics.Deliveries: {unit: metrics.UnitCount, dim: metrics.DimOutcome, functions: []string{deliverFunction},
		values: []string{string(message.Delivered), string(message.Retrying), string(message.Failed), string(message.Expired)}},
	metrics.AttemptLatency:    {unit: metrics.UnitMilliseconds, functions: []string{deliverFunction}},
	metrics.BatchSize:         {unit: metrics.UnitCount, functions: []string{deliverFunction}},
	metrics.RecordsNotStarted: {unit: metrics.UnitCount, functions: []string{deliverFunction}},
	metrics.LeaseConflicts:    {unit: metrics.UnitCount, functions: []string{deliverFunction}},
	metrics.MessagesAccepted:  {unit: metrics.UnitCount, functions: []string{apiFunction, relayFunction}},
	metrics.MessagesReplayed:  {unit: metrics.UnitCount, functions: []string{apiFunction, relayFunction}},
	metrics.MessagesRefused:   {unit: metrics.UnitCount, dim: metrics.DimCode, functions: []string{apiFunction, relayFunction}},
	metrics.AWSRequests:       {unit: metrics.UnitCount, dim: metrics.DimOperation, functions: []string{apiFunction, deliverFunction, relayFunction}},
}

// awsMetrics lists, per namespace, the metrics AWS writes that the dashboard and alarms may name,
// and the dimension that names the resource (of the template) each is about.
var awsMetrics = map[string]struct {
	dim, resourceType, attribute string
	names                        []string
}{
	"AWS/SQS": {dim: "QueueName", resourceType: "AWS::SQS::Queue", attribute: "QueueName",
		names: []string{"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateAgeOfOldestMessage"}},
	"AWS/Lambda": {dim: "FunctionName", resourceType: "AWS::Serverless::Function",
		names: []string{"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"}},
}

// metricRef is one metric a dashboard widget or an alarm names.
type metricRef struct {
	namespace, name string
	dims            map[string]string // dimension values; for a search, the values it is limited to
	schema          []string          // a search's dimension names (its values may be any)
	stat            string
	search          bool   // a SEARCH expression: every value of the dimensions not in dims
	widget          string // the title of the widget that draws it
}

func (m metricRef) String() string {
	return strings.ReplaceAll(fmt.Sprintf("%s %s %v", m.namespace, m.name, m.dims), refPrefix, "ref ")
}

// resourceOf returns the logical id and attribute a value names: "${Queue.QueueName}" as a Fn::Sub
// keeps it, or a resolved Ref or GetAtt.
func resourceOf(v string) (id, attribute string, ok bool) {
	if s, cut := strings.CutPrefix(v, refPrefix); cut {
		id, attribute, _ = strings.Cut(s, ".")
		return id, attribute, true
	}
	if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") && !strings.ContainsAny(v[2:len(v)-1], "${}!") {
		id, attribute, _ = strings.Cut(v[2:len(v)-1], ".")
		return id, attribute, true
	}
	return "", "", false
}

// metricProblems lists how m differs from what is written: a metric of the namespace
// metrics.Namespace must be one the code writes, with its dimensions, from a function that
// writes it; a metric of AWS one of awsMetrics about a resource of the template of its type.
func (t *Template) metricProblems(m metricRef) []string {
	types := t.resourceTypes()
	if m.namespace == metrics.Namespace {
		w, ok := codeMetrics[m.name]
		if !ok {
			return []string{fmt.Sprintf("%s: no function writes a metric %q", m, m.name)}
		}
		want := []string{metrics.DimService, metrics.DimFunction}
		if w.dim != "" {
			want = append(want, w.dim)
		}
		got := slices.Collect(maps.Keys(m.dims))
		if m.search {
			got = m.schema
		}
		if !sameSet(got, want) {
			return []string{fmt.Sprintf("%s: dimensions %v, the code writes %s under %v", m, sorted(got), m.name, want)}
		}
		var out []string
		if v, ok := m.dims[metrics.DimService]; ok && v != metrics.Service {
			out = append(out, fmt.Sprintf("%s: service %q, the code writes %q", m, v, metrics.Service))
		}
		fns := strings.Split(m.dims[metrics.DimFunction], "|") // a search may name several
		if !m.search || m.dims[metrics.DimFunction] != "" {
			for _, fn := range fns {
				id, attr, ok := resourceOf(fn)
				if !ok || attr != "" || !slices.Contains(w.functions, id) {
					out = append(out, fmt.Sprintf("%s: function %q, want the name of one of %v (${LogicalId}), which write it", m, fn, w.functions))
				}
			}
		} else {
			out = append(out, fmt.Sprintf("%s: a search not limited to this stack's functions %v", m, w.functions))
		}
		if v, ok := m.dims[w.dim]; ok && w.values != nil && !slices.Contains(w.values, v) {
			out = append(out, fmt.Sprintf("%s: %s %q, the code writes one of %v", m, w.dim, v, w.values))
		}
		switch {
		case w.unit == metrics.UnitCount && m.stat != "Sum":
			out = append(out, fmt.Sprintf("%s: statistic %q, want Sum: it counts per invocation", m, m.stat))
		case w.unit == metrics.UnitMilliseconds && !durationStat.MatchString(m.stat):
			out = append(out, fmt.Sprintf("%s: statistic %q, want a percentile (pNN), Average, Minimum or Maximum", m, m.stat))
		}
		return out
	}
	a, ok := awsMetrics[m.namespace]
	if !ok || !slices.Contains(a.names, m.name) || m.search {
		return []string{fmt.Sprintf("%s: not a metric pushfn's resources or code write", m)}
	}
	if len(m.dims) != 1 {
		return []string{fmt.Sprintf("%s: dimensions %v, want %s only", m, sorted(slices.Collect(maps.Keys(m.dims))), a.dim)}
	}
	id, attr, ok := resourceOf(m.dims[a.dim])
	if !ok || types[id] != a.resourceType || attr != a.attribute {
		want := "${LogicalId}"
		if a.attribute != "" {
			want = "${LogicalId." + a.attribute + "}"
		}
		return []string{fmt.Sprintf("%s: %s names no resource of type %s of the template as %s", m, a.dim, a.resourceType, want)}
	}
	return nil
}

// durationStat matches the statistics that read a distribution of durations.
var durationStat = regexp.MustCompile(`^(p\d{1,2}(\.\d+)?|Average|Minimum|Maximum)$`)

// resourceTypes maps every resource's logical id to its type.
func (t *Template) resourceTypes() map[string]string {
	out := map[string]string{}
	for id, r := range t.cf.Resources {
		out[id] = r.AWSCloudFormationType()
	}
	return out
}

// dashboardBody is the part of a dashboard's body the check reads.
type dashboardBody struct {
	Widgets []struct {
		Type       string `json:"type"`
		Properties struct {
			Title       string  `json:"title"`
			Stat        string  `json:"stat"`
			Metrics     [][]any `json:"metrics"`
			Annotations struct {
				Horizontal []struct {
					Value float64 `json:"value"`
				} `json:"horizontal"`
			} `json:"annotations"`
		} `json:"properties"`
	} `json:"widgets"`
}

// searchExpr matches a SEARCH expression: its schema, its terms, its statistic and period.
var searchExpr = regexp.MustCompile(`^SEARCH\('\{([^}]*)\}\s*(.*?)\s*',\s*'([A-Za-z0-9.]+)'(?:,\s*\d+)?\)$`)

// searchTerm matches a term of a search: Name="value".
var searchTerm = regexp.MustCompile(`([A-Za-z]+)="([^"]*)"`)

// parseMetric reads one entry of a metric widget's metrics: [namespace, name, dim, value, ...,
// {options}], or [{"expression": "SEARCH(...)"}]; stat is the widget's.
func parseMetric(entry []any, stat string) (metricRef, error) {
	var strs []string
	var opts map[string]any
	for i, e := range entry {
		switch v := e.(type) {
		case string:
			if opts != nil {
				return metricRef{}, fmt.Errorf("entry %v: a string after the options", entry)
			}
			strs = append(strs, v)
		case map[string]any:
			if i != len(entry)-1 {
				return metricRef{}, fmt.Errorf("entry %v: options before the end", entry)
			}
			opts = v
		default:
			return metricRef{}, fmt.Errorf("entry %v: %T is neither a string nor options", entry, e)
		}
	}
	if s, ok := opts["stat"].(string); ok {
		stat = s
	}
	if expr, ok := opts["expression"].(string); ok && len(strs) == 0 {
		m := searchExpr.FindStringSubmatch(expr)
		if m == nil {
			return metricRef{}, fmt.Errorf("expression %q is not a SEARCH('{namespace,dimensions} terms', 'stat', period)", expr)
		}
		schema := strings.Split(m[1], ",")
		ref := metricRef{namespace: schema[0], schema: schema[1:], dims: map[string]string{}, stat: m[3], search: true}
		rest := m[2]
		for _, term := range searchTerm.FindAllStringSubmatch(m[2], -1) {
			if term[1] == "MetricName" {
				ref.name = term[2]
			} else {
				ref.dims[term[1]] = strings.TrimPrefix(ref.dims[term[1]]+"|"+term[2], "|")
			}
			rest = strings.Replace(rest, term[0], "", 1)
		}
		// What is left joins the terms: a search must not match more than its terms say.
		if strings.Trim(strings.ReplaceAll(rest, "OR", ""), " ()") != "" {
			return metricRef{}, fmt.Errorf("expression %q: terms other than MetricName=\"...\" and Dimension=\"...\" joined by OR", expr)
		}
		if ref.name == "" || ref.namespace == "" {
			return metricRef{}, fmt.Errorf("expression %q names no namespace or no MetricName", expr)
		}
		return ref, nil
	}
	if len(strs) < 2 || len(strs)%2 != 0 {
		return metricRef{}, fmt.Errorf("entry %v: want namespace, name and dimension name/value pairs, in full", entry)
	}
	ref := metricRef{namespace: strs[0], name: strs[1], dims: map[string]string{}, stat: stat}
	for i := 2; i < len(strs); i += 2 {
		ref.dims[strs[i]] = strs[i+1]
	}
	if ref.namespace == "" || ref.name == "" || ref.namespace == "." || ref.name == "." {
		return metricRef{}, fmt.Errorf("entry %v: write the namespace and name out, not \".\" or empty", entry)
	}
	return ref, nil
}

// dashboard is the template's dashboard, decoded.
type dashboard struct {
	metrics     []metricRef
	annotations []float64 // the values of its horizontal annotations
	problems    []string  // what could not be read
}

// dashboard decodes the template's one dashboard.
func (t *Template) dashboard() dashboard {
	var out dashboard
	dashboards := t.cf.GetAllCloudWatchDashboardResources()
	if len(dashboards) != 1 {
		out.problems = []string{fmt.Sprintf("%d dashboards, want 1", len(dashboards))}
		return out
	}
	for id, d := range dashboards {
		var body dashboardBody
		if err := json.Unmarshal([]byte(d.DashboardBody), &body); err != nil {
			out.problems = []string{fmt.Sprintf("%s: DashboardBody is not JSON: %v", id, err)}
			return out
		}
		for _, w := range body.Widgets {
			for _, h := range w.Properties.Annotations.Horizontal {
				out.annotations = append(out.annotations, h.Value)
			}
			for _, e := range w.Properties.Metrics {
				m, err := parseMetric(e, w.Properties.Stat)
				if err != nil {
					out.problems = append(out.problems, fmt.Sprintf("widget %q: %v", w.Properties.Title, err))
					continue
				}
				m.widget = w.Properties.Title
				out.metrics = append(out.metrics, m)
			}
		}
	}
	return out
}

// shows reports whether the dashboard draws the metric name of namespace under exactly the
// dimensions of dims, with their values ("" matches any value, as a search's unfiltered
// dimension does), with the statistic stat ("" for any).
func (d dashboard) shows(namespace, name string, dims map[string]string, stat string) bool {
	keys := slices.Collect(maps.Keys(dims))
	return slices.ContainsFunc(d.metrics, func(m metricRef) bool {
		if m.namespace != namespace || m.name != name || stat != "" && m.stat != stat {
			return false
		}
		if m.search {
			if !sameSet(keys, m.schema) {
				return false
			}
			for k, filter := range m.dims {
				if dims[k] != "" && !slices.Contains(strings.Split(filter, "|"), dims[k]) {
					return false
				}
			}
			return true
		}
		if !sameSet(keys, slices.Collect(maps.Keys(m.dims))) {
			return false
		}
		for k, v := range dims {
			if v != "" && m.dims[k] != v {
				return false
			}
		}
		return true
	})
}

// DashboardShows reports whether the template's dashboard draws the metric name of namespace
// under exactly the dimensions of dims, with their values ("" matches any); a resource of the
// stack is named as the dashboard names it, "${LogicalId}" or "${LogicalId.Attribute}". It fails
// when the dashboard cannot be read.
func (t *Template) DashboardShows(namespace, name string, dims map[string]string) (bool, error) {
	d := t.dashboard()
	if len(d.problems) > 0 {
		return false, fmt.Errorf("read the dashboard: %s", strings.Join(d.problems, "; "))
	}
	return d.shows(namespace, name, dims, ""), nil
}

// dashboardProblems checks the template's dashboard: every metric it names is written (see
// metricProblems), and it shows every metric the code writes from each function that writes it
// (each outcome; every code and operation), the attempt latency's p50 and p99, the depth of each mapped queue and its
// dead-letter queue, the age of the mapped queues' oldest messages, and every function's errors
// and throttles. It returns the values of its horizontal annotations too, for the alarms' check.
func (t *Template) dashboardProblems() (problems []string, annotations []float64) {
	d := t.dashboard()
	problems, annotations = d.problems, d.annotations
	for _, m := range d.metrics {
		for _, p := range t.metricProblems(m) {
			problems = append(problems, fmt.Sprintf("widget %q: %s", m.widget, p))
		}
	}
	shows := d.shows
	missing := func(format string, args ...any) {
		problems = append(problems, "shows no "+fmt.Sprintf(format, args...))
	}
	for _, name := range sorted(slices.Collect(maps.Keys(codeMetrics))) {
		w := codeMetrics[name]
		for _, fn := range w.functions {
			dims := map[string]string{metrics.DimService: metrics.Service, metrics.DimFunction: "${" + fn + "}"}
			values := w.values
			if values == nil {
				values = []string{""} // any
			}
			for _, v := range values {
				if w.dim != "" {
					dims[w.dim] = v
				}
				if !shows(metrics.Namespace, name, dims, "") {
					missing("%s of %s %v", name, fn, dims)
				}
			}
		}
	}
	for _, p := range []string{"p50", "p99"} {
		if !shows(metrics.Namespace, metrics.AttemptLatency, map[string]string{metrics.DimService: metrics.Service, metrics.DimFunction: "${" + deliverFunction + "}"}, p) {
			missing("%s of %s", p, metrics.AttemptLatency)
		}
	}
	for _, m := range t.Mappings {
		q, _ := t.Queue(m.Queue)
		for _, queue := range []string{q.LogicalID, q.DeadLetterQueue} {
			if queue != "" && !shows("AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "${" + queue + ".QueueName}"}, "") {
				missing("depth (ApproximateNumberOfMessagesVisible) of the queue %s", queue)
			}
		}
		if !shows("AWS/SQS", "ApproximateAgeOfOldestMessage", map[string]string{"QueueName": "${" + q.LogicalID + ".QueueName}"}, "") {
			missing("age of the oldest message (ApproximateAgeOfOldestMessage) of the queue %s", q.LogicalID)
		}
	}
	for _, f := range t.Functions {
		for _, name := range []string{"Errors", "Throttles"} {
			if !shows("AWS/Lambda", name, map[string]string{"FunctionName": "${" + f.LogicalID + "}"}, "Sum") {
				missing("%s (Sum) of %s", name, f.LogicalID)
			}
		}
	}
	return problems, annotations
}

// alarmProblems checks the template's alarms: each names a metric that is written (see
// metricProblems), stays OK without data (an idle queue writes none) and notifies the same
// actions when it fires and when it clears; there is one on the age of each mapped queue's oldest
// message, one on any message in its dead-letter queue, and one on its function's errors. ages
// are the dashboard's horizontal annotations: the age alarm's threshold is drawn among them.
func (t *Template) alarmProblems(ages []float64) []string {
	var out []string
	type watch struct{ namespace, name, resource string }
	have := map[watch]float64{}
	for _, id := range sorted(slices.Collect(maps.Keys(t.cf.GetAllCloudWatchAlarmResources()))) {
		a := t.cf.GetAllCloudWatchAlarmResources()[id]
		if a.Namespace == nil || a.MetricName == nil || a.Statistic == nil || a.Threshold == nil || a.Period == nil {
			out = append(out, fmt.Sprintf("%s: want Namespace, MetricName, Statistic, Period and Threshold", id))
			continue
		}
		m := metricRef{namespace: *a.Namespace, name: *a.MetricName, dims: map[string]string{}, stat: *a.Statistic}
		for _, d := range a.Dimensions {
			m.dims[d.Name] = d.Value
		}
		for _, p := range t.metricProblems(m) {
			out = append(out, fmt.Sprintf("%s: %s", id, p))
		}
		if a.TreatMissingData == nil || *a.TreatMissingData != "notBreaching" {
			out = append(out, fmt.Sprintf("%s: TreatMissingData %q, want notBreaching: an idle queue or function writes no data", id, aws.ToString(a.TreatMissingData)))
		}
		if !slices.Equal(a.AlarmActions, a.OKActions) {
			out = append(out, fmt.Sprintf("%s: AlarmActions %v but OKActions %v, want the same topic told of both", id, a.AlarmActions, a.OKActions))
		}
		if a.ComparisonOperator != "GreaterThanThreshold" {
			out = append(out, fmt.Sprintf("%s: ComparisonOperator %s, want GreaterThanThreshold", id, a.ComparisonOperator))
		}
		for _, v := range m.dims {
			if res, _, ok := resourceOf(v); ok {
				have[watch{m.namespace, m.name, res}] = *a.Threshold
			}
		}
	}
	for _, mp := range t.Mappings {
		q, _ := t.Queue(mp.Queue)
		age, ok := have[watch{"AWS/SQS", "ApproximateAgeOfOldestMessage", q.LogicalID}]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("no alarm on the age of the oldest message of the queue %s", q.LogicalID))
		case !slices.Contains(ages, age):
			out = append(out, fmt.Sprintf("the dashboard draws no line at the oldest message alarm's threshold, %v s (drawn: %v)", age, ages))
		}
		if dlq, ok := have[watch{"AWS/SQS", "ApproximateNumberOfMessagesVisible", q.DeadLetterQueue}]; q.DeadLetterQueue == "" || !ok || dlq != 0 {
			out = append(out, fmt.Sprintf("no alarm on any message (more than 0) in the dead-letter queue %q of %s", q.DeadLetterQueue, q.LogicalID))
		}
		if _, ok := have[watch{"AWS/Lambda", "Errors", mp.Function}]; !ok {
			out = append(out, fmt.Sprintf("no alarm on the errors of %s", mp.Function))
		}
	}
	return out
}

// Capacity modes of a DynamoDB table.
const (
	onDemand    = "PAY_PER_REQUEST"
	provisioned = "PROVISIONED"
)

// billingProblems checks the tables' capacity against their billing mode: on demand, no
// provisioned throughput and no auto scaling; provisioned, throughput on the table and each
// global secondary index, and for each of their read and write capacities a scalable target whose
// range holds the throughput, with a target tracking policy on the matching utilisation.
func (t *Template) billingProblems() []string {
	var out []string
	targets := t.cf.GetAllApplicationAutoScalingScalableTargetResources()
	policies := t.cf.GetAllApplicationAutoScalingScalingPolicyResources()
	for _, id := range sorted(slices.Collect(maps.Keys(t.cf.GetAllDynamoDBTableResources()))) {
		table := t.cf.GetAllDynamoDBTableResources()[id]
		mode := provisioned // CloudFormation's default
		if table.BillingMode != nil {
			mode = *table.BillingMode
		}
		type unit struct{ resourceID, dimension string }
		want := map[unit]int{}
		throughput := map[string]*struct{ read, write int }{}
		if table.ProvisionedThroughput != nil {
			throughput["table/${"+id+"}"] = &struct{ read, write int }{table.ProvisionedThroughput.ReadCapacityUnits, table.ProvisionedThroughput.WriteCapacityUnits}
		} else if mode == provisioned {
			out = append(out, fmt.Sprintf("%s: billing mode %s without ProvisionedThroughput", id, mode))
		}
		for _, ix := range table.GlobalSecondaryIndexes {
			if ix.ProvisionedThroughput != nil {
				throughput["table/${"+id+"}/index/"+ix.IndexName] = &struct{ read, write int }{ix.ProvisionedThroughput.ReadCapacityUnits, ix.ProvisionedThroughput.WriteCapacityUnits}
			} else if mode == provisioned {
				out = append(out, fmt.Sprintf("%s: billing mode %s, but index %s has no ProvisionedThroughput", id, mode, ix.IndexName))
			}
		}
		switch mode {
		case onDemand:
			for r := range throughput {
				out = append(out, fmt.Sprintf("%s: billing mode %s, but %s has a ProvisionedThroughput", id, mode, r))
			}
		case provisioned:
			for r, tp := range throughput {
				kind := "table"
				if strings.Contains(r, "/index/") {
					kind = "index"
				}
				want[unit{r, "dynamodb:" + kind + ":ReadCapacityUnits"}] = tp.read
				want[unit{r, "dynamodb:" + kind + ":WriteCapacityUnits"}] = tp.write
			}
		default:
			out = append(out, fmt.Sprintf("%s: billing mode %q, want %s or %s", id, mode, onDemand, provisioned))
		}
		for _, tid := range sorted(slices.Collect(maps.Keys(targets))) {
			st := targets[tid]
			if st.ServiceNamespace != "dynamodb" || !strings.HasPrefix(st.ResourceId, "table/${"+id+"}") {
				continue
			}
			u := unit{st.ResourceId, st.ScalableDimension}
			start, ok := want[u]
			if !ok {
				out = append(out, fmt.Sprintf("%s: scales %s %s, which the table's billing mode %s does not provision", tid, st.ResourceId, st.ScalableDimension, mode))
				continue
			}
			delete(want, u)
			if st.MinCapacity > st.MaxCapacity || start < st.MinCapacity || start > st.MaxCapacity {
				out = append(out, fmt.Sprintf("%s: capacity %d..%d does not hold the provisioned %d", tid, st.MinCapacity, st.MaxCapacity, start))
			}
			metric := "DynamoDBReadCapacityUtilization"
			if strings.HasSuffix(st.ScalableDimension, "WriteCapacityUnits") {
				metric = "DynamoDBWriteCapacityUtilization"
			}
			n := 0
			for _, p := range policies {
				if p.ScalingTargetId == nil || *p.ScalingTargetId != refPrefix+tid {
					continue
				}
				n++
				c := p.TargetTrackingScalingPolicyConfiguration
				if p.PolicyType != "TargetTrackingScaling" || c == nil || c.PredefinedMetricSpecification == nil ||
					c.PredefinedMetricSpecification.PredefinedMetricType != metric || c.TargetValue <= 0 || c.TargetValue > 100 {
					out = append(out, fmt.Sprintf("%s: its policy %s is not target tracking of %s at a value in (0, 100]", tid, p.PolicyName, metric))
				}
			}
			if n != 1 {
				out = append(out, fmt.Sprintf("%s: %d scaling policies, want 1", tid, n))
			}
		}
		for _, u := range slices.SortedFunc(maps.Keys(want), func(a, b unit) int { return strings.Compare(a.resourceID+a.dimension, b.resourceID+b.dimension) }) {
			out = append(out, fmt.Sprintf("%s: %s %s is provisioned but nothing scales it", id, u.resourceID, u.dimension))
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(sorted(a), sorted(b))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
