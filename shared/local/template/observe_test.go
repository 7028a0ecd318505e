package template

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The metrics the check holds the dashboard and alarms to are the code's: the constants
// shared/metrics declares as metrics, each written (Add, AddBy, Observe) by the functions that
// link the packages calling it, under the dimension the call names. A function's packages are
// the one its Makefile target builds and every package of the module that one imports, directly
// or not: shared/httpapi, shared/deliver, shared/relay, and shared/awscount's middleware, which
// all three install in their SDK clients. A metric added, moved or re-dimensioned in the code
// without the check (and so the dashboard) following fails here.
func TestCodeMetricsAreWhatTheCodeWrites(t *testing.T) {
	t.Parallel()
	consts := packageConsts(t, "../../metrics")
	declared := map[string]bool{}
	for _, name := range consts.metrics {
		declared[consts.values[name]] = true
	}
	if got, want := sorted(slices.Collect(maps.Keys(declared))), sorted(slices.Collect(maps.Keys(codeMetrics))); !slices.Equal(got, want) {
		t.Errorf("shared/metrics declares the metrics %v, the check knows %v", got, want)
	}
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, makefile := readRepoFiles(t)
	type use struct {
		dim       string
		functions []string
	}
	got := map[string]use{}
	for _, f := range tm.Functions {
		n := 0
		for _, dir := range linkedPackages(t, buildPackage(t, makefile, f.LogicalID)) {
			for _, c := range metricCalls(t, dir) {
				n++
				name, ok := consts.values[c.metric]
				if !ok {
					t.Errorf("%s: %s(metrics.%s): not a constant of shared/metrics", dir, c.method, c.metric)
					continue
				}
				u := got[name]
				if c.dim != "" {
					u.dim = consts.values[c.dim]
				}
				if !slices.Contains(u.functions, f.LogicalID) {
					u.functions = append(u.functions, f.LogicalID)
				}
				got[name] = u
			}
		}
		if n == 0 {
			t.Errorf("%s: none of the packages it links records a metric", f.LogicalID)
		}
	}
	want := map[string]use{}
	for name, w := range codeMetrics {
		want[name] = use{dim: w.dim, functions: sorted(w.functions)}
	}
	for name, u := range got {
		u.functions = sorted(u.functions)
		got[name] = u
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the functions' code writes %v, the check knows %v", got, want)
	}
}

// buildTarget matches a Makefile target that builds a function: its logical id and the package
// it builds.
var buildTarget = regexp.MustCompile(`(?m)^build-([A-Za-z0-9]+):.*\n\t\$\(call build_function,\./([^,)]+),`)

// buildPackage returns the directory, relative to this package's, of the main package the
// Makefile's build-<id> target builds.
func buildPackage(t *testing.T, makefile, id string) string {
	t.Helper()
	for _, m := range buildTarget.FindAllStringSubmatch(makefile, -1) {
		if m[1] == id {
			return filepath.Join("../../..", filepath.FromSlash(m[2]))
		}
	}
	t.Fatalf("the Makefile has no build-%s target calling build_function", id)
	return ""
}

// linkedPackages returns the directory of the package in dir and of every package of this module
// it imports, directly or not.
func linkedPackages(t *testing.T, dir string) []string {
	t.Helper()
	gomod, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var module string
	for l := range strings.Lines(string(gomod)) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			module = strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	if module == "" {
		t.Fatal("go.mod names no module")
	}
	seen := map[string]bool{dir: true}
	for queue := []string{dir}; len(queue) > 0; queue = queue[1:] {
		for _, f := range parseDir(t, queue[0]) {
			for _, imp := range f.Imports {
				path, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					t.Fatal(err)
				}
				rest, ok := strings.CutPrefix(path, module+"/")
				if !ok {
					continue
				}
				if d := filepath.Join("../../..", filepath.FromSlash(rest)); !seen[d] {
					seen[d] = true
					queue = append(queue, d)
				}
			}
		}
	}
	return sorted(slices.Collect(maps.Keys(seen)))
}

// consts is what a package declares as string constants.
type consts struct {
	values  map[string]string // name: value
	metrics []string          // the names declared in a block documented "Metrics of ..."
}

// packageConsts reads the string constants of the package in dir.
func packageConsts(t *testing.T, dir string) consts {
	t.Helper()
	out := consts{values: map[string]string{}}
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			isMetrics := g.Doc != nil && strings.HasPrefix(g.Doc.Text(), "Metrics of")
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out.values[n.Name] = v
					if isMetrics {
						out.metrics = append(out.metrics, n.Name)
					}
				}
			}
		}
	}
	if len(out.metrics) == 0 {
		t.Fatalf("%s declares no const block documented \"Metrics of ...\"", dir)
	}
	return out
}

// metricCall is a call that records a metric: m.Add(metrics.X, ...), m.AddBy(metrics.X,
// metrics.DimY, ...) or m.Observe(metrics.X, ...).
type metricCall struct{ method, metric, dim string }

// metricCalls finds the metric calls of the package in dir (its tests left out), if any.
func metricCalls(t *testing.T, dir string) []metricCall {
	t.Helper()
	var out []metricCall
	for _, f := range parseDir(t, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !slices.Contains([]string{"Add", "AddBy", "Observe"}, sel.Sel.Name) {
				return true
			}
			metric, ok := metricsConst(call.Args[0])
			if !ok {
				return true
			}
			c := metricCall{method: sel.Sel.Name, metric: metric}
			if sel.Sel.Name == "AddBy" {
				if c.dim, ok = metricsConst(call.Args[1]); !ok {
					t.Errorf("%s: AddBy(metrics.%s, ...) names its dimension with no constant of shared/metrics", dir, metric)
				}
			}
			out = append(out, c)
			return true
		})
	}
	return out
}

// metricsConst returns X of an expression metrics.X.
func metricsConst(e ast.Expr) (string, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || pkg.Name != "metrics" {
		return "", false
	}
	return sel.Sel.Name, true
}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*ast.File
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return out
}

// The dashboard, decoded: the metrics it names are exactly the code's (each from each function
// that writes it) and AWS's for the queues and functions, the latency as p50 and p99.
func TestDashboardMetrics(t *testing.T) {
	t.Parallel()
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	problems, annotations := tm.dashboardProblems()
	for _, p := range problems {
		t.Error(p)
	}
	if len(annotations) != 1 || annotations[0] != 900 {
		t.Errorf("horizontal annotations %v, want the oldest message alarm's default threshold, 900 s", annotations)
	}
	var body dashboardBody
	if err := json.Unmarshal([]byte(tm.cf.GetAllCloudWatchDashboardResources()["Dashboard"].DashboardBody), &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, w := range body.Widgets {
		for _, e := range w.Properties.Metrics {
			m, err := parseMetric(e, w.Properties.Stat)
			if err != nil {
				t.Fatal(err)
			}
			key := m.namespace + " " + m.name
			if m.name == "AttemptLatency" {
				key += " " + m.stat
			}
			if m.search {
				key += " search " + m.dims["function"]
			}
			got[key]++
		}
	}
	want := map[string]int{
		"pushfn Deliveries": 4, "pushfn AttemptLatency p50": 1, "pushfn AttemptLatency p99": 1,
		"pushfn BatchSize": 1, "pushfn RecordsNotStarted": 1, "pushfn LeaseConflicts": 1,
		"pushfn MessagesAccepted": 2, "pushfn MessagesReplayed": 2,
		"pushfn MessagesRefused search ${ApiFunction}|${RelayFunction}":                1,
		"pushfn AWSRequests search ${ApiFunction}|${DeliverFunction}|${RelayFunction}": 1,
		"AWS/SQS ApproximateNumberOfMessagesVisible":                                   2, "AWS/SQS ApproximateNumberOfMessagesNotVisible": 1,
		"AWS/SQS ApproximateAgeOfOldestMessage": 1, "AWS/Lambda Errors": 3, "AWS/Lambda Throttles": 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dashboard metrics %v, want %v", got, want)
	}
}

// The dashboard's metric entries and search expressions are read as CloudWatch reads them, and
// anything else is refused rather than skipped.
func TestParseMetric(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entry   []any
		stat    string
		want    metricRef
		wantErr bool
	}{
		{name: "metric with options", entry: []any{"pushfn", "Deliveries", "service", "pushfn", "outcome", "failed", map[string]any{"stat": "Sum"}},
			want: metricRef{namespace: "pushfn", name: "Deliveries", dims: map[string]string{"service": "pushfn", "outcome": "failed"}, stat: "Sum"}},
		{name: "widget's statistic", entry: []any{"AWS/Lambda", "Errors", "FunctionName", "${ApiFunction}"}, stat: "Sum",
			want: metricRef{namespace: "AWS/Lambda", name: "Errors", dims: map[string]string{"FunctionName": "${ApiFunction}"}, stat: "Sum"}},
		{name: "search", entry: []any{map[string]any{"expression": `SEARCH('{pushfn,service,function,code} MetricName="MessagesRefused" (function="${A}" OR function="${B}")', 'Sum', 60)`}},
			want: metricRef{namespace: "pushfn", name: "MessagesRefused", schema: []string{"service", "function", "code"},
				dims: map[string]string{"function": "${A}|${B}"}, stat: "Sum", search: true}},
		{name: "search with a partial term", entry: []any{map[string]any{"expression": `SEARCH('{pushfn,function} MetricName="Deliveries" prod', 'Sum', 60)`}}, wantErr: true},
		{name: "search without a metric name", entry: []any{map[string]any{"expression": `SEARCH('{pushfn,function} function="${A}"', 'Sum', 60)`}}, wantErr: true},
		{name: "metric math", entry: []any{map[string]any{"expression": "m1+m2"}}, wantErr: true},
		{name: "shorthand", entry: []any{".", "Errors", "FunctionName", "x"}, wantErr: true},
		{name: "dimension without value", entry: []any{"AWS/Lambda", "Errors", "FunctionName"}, wantErr: true},
		{name: "options in the middle", entry: []any{"AWS/Lambda", map[string]any{}, "Errors"}, wantErr: true},
		{name: "number", entry: []any{"AWS/Lambda", "Errors", 1.0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseMetric(tt.entry, tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMetric(%v) error %v, want error %v", tt.entry, err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMetric(%v) = %+v, want %+v", tt.entry, got, tt.want)
			}
		})
	}
}

// Three alarms, each on what the check asks for; they notify AlarmTopicArn when it is set
// (firing and clearing) and nothing when it is empty, and the template checks clean either way.
func TestAlarmTopic(t *testing.T) {
	t.Parallel()
	template, makefile := readRepoFiles(t)
	const arn = "arn:aws:sns:eu-west-1:123456789012:pushfn-alarms"
	for _, topic := range []string{"", arn} {
		t.Run("topic "+topic, func(t *testing.T) {
			t.Parallel()
			text := strings.Replace(template, "    Default: \"\"\n    AllowedPattern: \"^(arn:aws", "    Default: \""+topic+"\"\n    AllowedPattern: \"^(arn:aws", 1)
			if text == template && topic != "" {
				t.Fatal("the AlarmTopicArn parameter's default is gone from template.yaml")
			}
			tm, err := Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tm.Check(makefile) {
				t.Errorf("%v", p)
			}
			alarms := tm.cf.GetAllCloudWatchAlarmResources()
			if got, want := sorted(slices.Collect(maps.Keys(alarms))), []string{"DeadLetterQueueAlarm", "DeliverErrorsAlarm", "OldestMessageAgeAlarm"}; !slices.Equal(got, want) {
				t.Errorf("alarms %v, want %v", got, want)
			}
			var want []string
			if topic != "" {
				want = []string{topic}
			}
			for id, a := range alarms {
				if !slices.Equal(a.AlarmActions, want) || !slices.Equal(a.OKActions, want) {
					t.Errorf("%s: AlarmActions %v, OKActions %v, want %v for both", id, a.AlarmActions, a.OKActions, want)
				}
			}
		})
	}
}

// Both billing modes deploy a coherent table: on demand with no provisioned throughput and no
// auto scaling; provisioned with throughput on the table and each index and a scalable target
// with a target tracking policy for each read and write capacity, and nothing else changed.
func TestTableBillingModes(t *testing.T) {
	t.Parallel()
	template, makefile := readRepoFiles(t)
	tests := []struct {
		mode               string
		targets, policies  int
		throughput         bool
		scaledResourcesIDs []string
	}{
		{mode: onDemand},
		{mode: provisioned, targets: 6, policies: 6, throughput: true, scaledResourcesIDs: []string{
			"table/${Table}", "table/${Table}/index/gsi1", "table/${Table}/index/gsi2"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			text := strings.Replace(template, "    Default: "+onDemand+"\n", "    Default: "+tt.mode+"\n", 1)
			if !strings.Contains(template, "    Default: "+onDemand+"\n") {
				t.Fatal("the TableBillingMode parameter's default is gone from template.yaml")
			}
			tm, err := Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tm.Check(makefile) {
				t.Errorf("%v", p)
			}
			table := tm.cf.GetAllDynamoDBTableResources()["Table"]
			if table.BillingMode == nil || *table.BillingMode != tt.mode {
				t.Errorf("BillingMode %v, want %s", table.BillingMode, tt.mode)
			}
			if (table.ProvisionedThroughput != nil) != tt.throughput {
				t.Errorf("ProvisionedThroughput %+v, want one: %v", table.ProvisionedThroughput, tt.throughput)
			}
			if tt.throughput && (table.ProvisionedThroughput.ReadCapacityUnits != 5 || table.ProvisionedThroughput.WriteCapacityUnits != 5) {
				t.Errorf("ProvisionedThroughput %+v, want the Min parameters' defaults, 5 and 5", table.ProvisionedThroughput)
			}
			if len(table.GlobalSecondaryIndexes) != 2 {
				t.Fatalf("%d indexes, want 2", len(table.GlobalSecondaryIndexes))
			}
			for _, ix := range table.GlobalSecondaryIndexes {
				if (ix.ProvisionedThroughput != nil) != tt.throughput {
					t.Errorf("index %s: ProvisionedThroughput %+v, want one: %v", ix.IndexName, ix.ProvisionedThroughput, tt.throughput)
				}
			}
			targets := tm.cf.GetAllApplicationAutoScalingScalableTargetResources()
			policies := tm.cf.GetAllApplicationAutoScalingScalingPolicyResources()
			if len(targets) != tt.targets || len(policies) != tt.policies {
				t.Errorf("%d scalable targets and %d scaling policies, want %d and %d", len(targets), len(policies), tt.targets, tt.policies)
			}
			var scaled []string
			for _, st := range targets {
				if !slices.Contains(scaled, st.ResourceId) {
					scaled = append(scaled, st.ResourceId)
				}
				if st.RoleARN != nil {
					t.Errorf("%s: RoleARN %s, want the service-linked role (none named)", st.ResourceId, *st.RoleARN)
				}
			}
			if !slices.Equal(sorted(scaled), tt.scaledResourcesIDs) {
				t.Errorf("scaled resources %v, want %v", sorted(scaled), tt.scaledResourcesIDs)
			}
			// Only the table's resources depend on the mode.
			others := func(tm *Template) []string {
				var ids []string
				for id, r := range tm.cf.Resources {
					if !strings.HasPrefix(r.AWSCloudFormationType(), "AWS::ApplicationAutoScaling::") {
						ids = append(ids, id)
					}
				}
				return sorted(ids)
			}
			base, err := Parse([]byte(template))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(others(tm), others(base)) {
				t.Errorf("resources %v, want %v as on demand has them", others(tm), others(base))
			}
		})
	}
}

// Parse leaves out a resource whose Condition is false with the parameters' defaults, keeps the
// others without their Condition, and refuses a Condition the template does not declare.
func TestParseResourceConditions(t *testing.T) {
	t.Parallel()
	const tmpl = `
Parameters:
  On:
    Type: String
    Default: "yes"
Conditions:
  IsOn: !Equals [!Ref On, "yes"]
  IsOff: !Not [!Equals [!Ref On, "yes"]]
Resources:
  Kept:
    Type: AWS::SQS::Queue
    Condition: IsOn
  Dropped:
    Type: AWS::SQS::Queue
    Condition: IsOff
  Always:
    Type: AWS::SQS::Queue
`
	tm, err := Parse([]byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, q := range tm.Queues {
		ids = append(ids, q.LogicalID)
	}
	if want := []string{"Always", "Kept"}; !slices.Equal(ids, want) {
		t.Errorf("queues %v, want %v", ids, want)
	}
	if _, err := Parse([]byte(strings.Replace(tmpl, "Condition: IsOff", "Condition: Missing", 1))); err == nil {
		t.Error("a resource whose Condition the template does not declare parsed")
	}
}

// Fn::Sub resolves parameters (numbers too) and pseudo parameters, keeps references to the
// template's resources as written, and turns ${!Literal} into ${Literal}.
func TestSub(t *testing.T) {
	t.Parallel()
	template := map[string]any{
		"Parameters": map[string]any{"Age": map[string]any{"Default": 900.0}, "Name": map[string]any{"Default": "pushfn"}},
		"Resources":  map[string]any{"Queue": map[string]any{"Type": "AWS::SQS::Queue"}},
	}
	tests := []struct {
		input any
		want  any
	}{
		{input: `{"value": ${Age}, "name": "${Name}"}`, want: `{"value": 900, "name": "pushfn"}`},
		{input: "${Queue.QueueName} ${Queue} ${AWS::Region}", want: "${Queue.QueueName} ${Queue} us-east-1"},
		{input: "${!Literal} ${Unknown}x", want: "${Literal} x"},
		{input: []any{"${A}-${Name}", map[string]any{"A": "a"}}, want: "a-pushfn"},
		{input: []any{"only one"}, want: nil},
		{input: 3.0, want: nil},
	}
	for _, tt := range tests {
		if got := sub("Fn::Sub", tt.input, template); got != tt.want {
			t.Errorf("sub(%v) = %v, want %v", tt.input, got, tt.want)
		}
	}
}

// parseMetric never panics, and what it accepts names a namespace and a metric.
func FuzzParseMetric(f *testing.F) {
	f.Add(`["pushfn", "Deliveries", "service", "pushfn", {"stat": "Sum"}]`)
	f.Add(`[{"expression": "SEARCH('{pushfn,function} MetricName=\\"X\\" (function=\\"a\\" OR function=\\"b\\")', 'Sum', 60)"}]`)
	f.Add(`[".", "Errors"]`)
	f.Add(`[{"expression": "SEARCH('{}', 'Sum')"}]`)
	f.Fuzz(func(t *testing.T, entry string) {
		var e []any
		if json.Unmarshal([]byte(entry), &e) != nil {
			return
		}
		m, err := parseMetric(e, "Sum")
		if err == nil && (m.namespace == "" || m.name == "") {
			t.Errorf("parseMetric(%s) = %+v with no namespace or name", entry, m)
		}
	})
}

// sub never panics, and leaves a string with no ${ as it is.
func FuzzSub(f *testing.F) {
	template := map[string]any{
		"Parameters": map[string]any{"Age": map[string]any{"Default": 900.0}},
		"Resources":  map[string]any{"Queue": map[string]any{"Type": "AWS::SQS::Queue"}},
	}
	for _, s := range []string{"${Age}", "${Queue.QueueName}", "${!Literal}", "plain", "${", "${}", "{{resolve:secretsmanager:${Queue}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := sub("Fn::Sub", s, template).(string)
		if !ok {
			t.Fatalf("sub(%q) is not a string", s)
		}
		if !strings.Contains(s, "${") && got != s {
			t.Errorf("sub(%q) = %q, want it unchanged", s, got)
		}
	})
}

// DashboardShows matches a metric under exactly its dimensions, a search's unfiltered dimension
// matching any value and its filtered ones only theirs.
func TestDashboardShows(t *testing.T) {
	t.Parallel()
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	deliver := map[string]string{"service": "pushfn", "function": "${DeliverFunction}"}
	with := func(base map[string]string, k, v string) map[string]string {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	tests := []struct {
		name              string
		namespace, metric string
		dims              map[string]string
		want              bool
	}{
		{name: "an outcome", namespace: "pushfn", metric: "Deliveries", dims: with(deliver, "outcome", "retrying"), want: true},
		{name: "another function", namespace: "pushfn", metric: "Deliveries", dims: with(with(deliver, "outcome", "retrying"), "function", "${ApiFunction}")},
		{name: "a dimension short", namespace: "pushfn", metric: "Deliveries", dims: deliver},
		{name: "a dimension more", namespace: "pushfn", metric: "BatchSize", dims: with(deliver, "outcome", "delivered")},
		{name: "latency", namespace: "pushfn", metric: "AttemptLatency", dims: deliver, want: true},
		{name: "refused by the relay, any code", namespace: "pushfn", metric: "MessagesRefused",
			dims: map[string]string{"service": "pushfn", "function": "${RelayFunction}", "code": "invalid_json"}, want: true},
		{name: "refused by the deliver function", namespace: "pushfn", metric: "MessagesRefused",
			dims: map[string]string{"service": "pushfn", "function": "${DeliverFunction}", "code": "invalid_json"}},
		{name: "refused without its code", namespace: "pushfn", metric: "MessagesRefused",
			dims: map[string]string{"service": "pushfn", "function": "${ApiFunction}"}},
		{name: "AWS requests of the deliver function, any operation", namespace: "pushfn", metric: "AWSRequests",
			dims: with(deliver, "operation", "DynamoDB.UpdateItem"), want: true},
		{name: "AWS requests of the api", namespace: "pushfn", metric: "AWSRequests",
			dims: map[string]string{"service": "pushfn", "function": "${ApiFunction}", "operation": "DynamoDB.PutItem"}, want: true},
		{name: "AWS requests of another stack's function", namespace: "pushfn", metric: "AWSRequests",
			dims: map[string]string{"service": "pushfn", "function": "${OtherFunction}", "operation": "DynamoDB.PutItem"}},
		{name: "AWS requests without their operation", namespace: "pushfn", metric: "AWSRequests", dims: deliver},
		{name: "a queue's age", namespace: "AWS/SQS", metric: "ApproximateAgeOfOldestMessage", dims: map[string]string{"QueueName": "${Queue.QueueName}"}, want: true},
		{name: "the dead-letter queue's age", namespace: "AWS/SQS", metric: "ApproximateAgeOfOldestMessage", dims: map[string]string{"QueueName": "${DeadLetterQueue.QueueName}"}},
		{name: "unknown", namespace: "pushfn", metric: "Pushes", dims: deliver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tm.DashboardShows(tt.namespace, tt.metric, tt.dims)
			if err != nil || got != tt.want {
				t.Errorf("DashboardShows(%s, %s, %v) = %v, %v; want %v, nil", tt.namespace, tt.metric, tt.dims, got, err, tt.want)
			}
		})
	}
	text, _ := readRepoFiles(t)
	broken, err := Parse([]byte(strings.Replace(text, `"start": "-PT3H",`, `"start": "-PT3H"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broken.DashboardShows("pushfn", "Deliveries", deliver); err == nil {
		t.Error("DashboardShows read a dashboard whose body is not JSON")
	}
}
