package template

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushfn/pushfn/shared/config"
	"github.com/pushfn/pushfn/shared/store"
)

func readRepoFiles(t *testing.T) (template, makefile string) {
	t.Helper()
	tb, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	return string(tb), string(mb)
}

func TestRepositoryTemplatePassesChecks(t *testing.T) {
	t.Parallel()
	_, makefile := readRepoFiles(t)
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tm.Check(makefile) {
		t.Errorf("%v", p)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range tm.Functions {
		ids = append(ids, f.LogicalID)
	}
	if got, want := strings.Join(ids, ","), "ApiFunction,DeliverFunction,RelayFunction"; got != want {
		t.Fatalf("functions %s, want %s", got, want)
	}
	deliver, _ := tm.Function("DeliverFunction")
	if deliver.Timeout != 120*time.Second || deliver.MemoryMB != 1024 || deliver.LogFormat != "JSON" {
		t.Errorf("DeliverFunction: timeout %s, memory %d, log format %q", deliver.Timeout, deliver.MemoryMB, deliver.LogFormat)
	}
	if deliver.Env["MAX_ATTEMPTS"] != "10" || deliver.Env["REQUEST_TIMEOUT"] != "10s" || deliver.Env["LOG_LEVEL"] != "INFO" {
		t.Errorf("DeliverFunction env defaults: %v", deliver.Env)
	}
	if deliver.Refs["QUEUE_URL"] != "Queue" || deliver.Refs["TABLE_NAME"] != "Table" {
		t.Errorf("DeliverFunction refs: %v, want QUEUE_URL→Queue, TABLE_NAME→Table", deliver.Refs)
	}
	if _, ok := deliver.Env["QUEUE_URL"]; ok {
		t.Error("QUEUE_URL is in Env; a reference to a resource belongs in Refs only")
	}
	wantQueue := Queue{LogicalID: "Queue", VisibilityTimeout: 720 * time.Second, DeadLetterQueue: "DeadLetterQueue", MaxReceiveCount: 20}
	if q, _ := tm.Queue("Queue"); q != wantQueue {
		t.Errorf("queue %+v, want %+v", q, wantQueue)
	}
	if len(tm.Mappings) != 1 {
		t.Fatalf("%d mappings, want 1", len(tm.Mappings))
	}
	want := Mapping{LogicalID: "DeliverEventSourceMapping", Queue: "Queue", Function: "DeliverFunction", BatchSize: 1000,
		BatchingWindow: time.Second, ReportBatchItemFailures: true, MaximumConcurrency: 10}
	if got := tm.Mappings[0]; got != want {
		t.Errorf("mapping %+v, want %+v", got, want)
	}
}

// Each check must be able to fail: break a copy of the template or Makefile and expect the rule.
func TestChecksCatchBrokenCopies(t *testing.T) {
	t.Parallel()
	template, makefile := readRepoFiles(t)
	tests := []struct {
		name     string
		template func(string) string
		makefile func(string) string
		want     Rule
	}{
		{name: "build target missing", makefile: replace("build-RelayFunction:", "build-Relay:"), want: RuleBuildTarget},
		{name: "unknown variable", template: replace("          EVENT_BUS_NAME: !Ref EventBusName\n      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: [dynamodb:GetItem",
			"          EVENT_BUS_NAME: !Ref EventBusName\n          QUEUE_ENDPOINT: x\n      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: [dynamodb:GetItem"), want: RuleEnvKnown},
		{name: "bad event bus name", template: replace("    Default: \"\"\n    AllowedPattern", "    Default: \"my bus\"\n    AllowedPattern"), want: RuleEnvValid},
		{name: "events granted without a bus", template: replace("              - PublishEvents\n", "              - UseIamAuth\n"), want: RuleEventsGranted},
		{name: "events granted on every bus", template: chain(replace("    Default: \"\"\n    AllowedPattern", "    Default: \"ops\"\n    AllowedPattern"),
			replace(":event-bus/${EventBusName}\"", ":event-bus/*\"")), want: RuleEventsGranted},
		{name: "bus without events granted", template: chain(replace("    Default: \"\"\n    AllowedPattern", "    Default: \"ops\"\n    AllowedPattern"),
			replace("              Action: [events:PutEvents]\n", "              Action: [sqs:SendMessage]\n")), want: RuleEventsGranted},
		{name: "reserved variable", template: replace("          LOG_LEVEL: !Ref LogLevel\n", "          LOG_LEVEL: !Ref LogLevel\n          AWS_REGION: x\n"), want: RuleEnvKnown},
		{name: "bad default", template: replace(`Default: "10s"`, `Default: "ten seconds"`), want: RuleEnvValid},
		{name: "no batch item failures", template: replace("FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []"), want: RuleBatchFailures},
		{name: "short visibility", template: replace("VisibilityTimeout: 720", "VisibilityTimeout: 719"), want: RuleVisibility},
		{name: "long deliver timeout", template: replace("Timeout: 120", "Timeout: 200"), want: RuleVisibility},
		{name: "redrive at max attempts", template: replace("    Default: 20\n", "    Default: 10\n"), want: RuleEnvValid}, // the deliver function loads MAX_RECEIVE_COUNT and refuses it,
		{name: "no redrive", template: replace("      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt DeadLetterQueue.Arn\n        maxReceiveCount: !Ref MaxReceiveCount\n", ""), want: RuleRedrive},
		{name: "wildcard action", template: replace("[sqs:SendMessage]", "[sqs:*]"), want: RuleActions},
		{name: "managed policy", template: replace("      Policies:\n        - Statement:", "      Policies:\n        - AmazonSQSFullAccess\n        - Statement:"), want: RuleActions},
		{name: "star action", template: replace("[dynamodb:GetItem, dynamodb:UpdateItem]", "'*'"), want: RuleActions},
		{name: "permission misses $default", template: replace(`${HttpApi}/*"`, `${HttpApi}/*/*/v1/messages*"`), want: RuleAPIPermission},
		{name: "permission misses a method", template: replace(`${HttpApi}/*"`, `${HttpApi}/*/POST/*"`), want: RuleAPIPermission},
		{name: "function timeout not the Timeout", template: replace(`FUNCTION_TIMEOUT: "120"`, `FUNCTION_TIMEOUT: "60"`), want: RuleTimeoutKnown},
		{name: "request timeout beyond the function's", template: replace(`Default: "10s"`, `Default: "118s"`), want: RuleEnvValid},
		{name: "receive count not the queue's", template: replace("MAX_RECEIVE_COUNT: !Ref MaxReceiveCount", `MAX_RECEIVE_COUNT: "25"`), want: RuleRedrive},
		{name: "batch larger than one invocation starts", template: replace("    Default: 1000\n", "    Default: 2000\n"), want: RuleBatchStarts},
		{name: "text logs", template: replace("LogFormat: JSON", "LogFormat: Text"), want: RuleJSONLogs},
		{name: "api without the endpoint secrets key", template: replace("          ENDPOINT_SECRETS_KEY: !Sub \"{{resolve:secretsmanager:${EndpointSecretsKey}}}\"\n", ""), want: RuleEnvValid},
		{name: "deliver without the endpoint secrets key", template: replace("          # Decrypts the secrets of endpoints, which sign the pushes to them.\n          ENDPOINT_SECRETS_KEY: !Sub \"{{resolve:secretsmanager:${EndpointSecretsKey}}}\"\n", ""), want: RuleEnvValid},
		{name: "dashboard names a metric no function writes", template: replace(`"pushfn", "LeaseConflicts"`, `"pushfn", "LeaseConflict"`), want: RuleDashboard},
		{name: "dashboard names an outcome the code never writes", template: replace(`"outcome", "expired"`, `"outcome", "dropped"`), want: RuleDashboard},
		{name: "dashboard latency of the api", template: replace(`"${DeliverFunction}", {"stat": "p99"`, `"${ApiFunction}", {"stat": "p99"`), want: RuleDashboard},
		{name: "dashboard metric without its service", template: replace(`["pushfn", "BatchSize", "service", "pushfn", "function"`, `["pushfn", "BatchSize", "function"`), want: RuleDashboard},
		{name: "dashboard in another namespace", template: replace(`["pushfn", "Deliveries", "service", "pushfn", "function", "${DeliverFunction}", "outcome", "delivered"`, `["PushFn", "Deliveries", "service", "pushfn", "function", "${DeliverFunction}", "outcome", "delivered"`), want: RuleDashboard},
		{name: "dashboard without the relay's throttles", template: replace(",\n                  [\"AWS/Lambda\", \"Throttles\", \"FunctionName\", \"${RelayFunction}\", {\"label\": \"relay\"}]", ""), want: RuleDashboard},
		{name: "dashboard queue by its URL", template: replace(`"QueueName", "${DeadLetterQueue.QueueName}"`, `"QueueName", "${DeadLetterQueue}"`), want: RuleDashboard},
		{name: "dashboard searches another metric", template: replace(`MetricName=\"MessagesRefused\"`, `MetricName=\"MessagesRejected\"`), want: RuleDashboard},
		{name: "dashboard searches every stack", template: replace(` (function=\"${ApiFunction}\" OR function=\"${RelayFunction}\")`, ""), want: RuleDashboard},
		{name: "dashboard without the AWS requests widget", template: cut(`,
            {
              "type": "metric", "x": 0, "y": 24,`, "\n          ]\n        }\n"), want: RuleDashboard},
		{name: "dashboard AWS requests without the deliver function's", template: replace(` OR function=\"${DeliverFunction}\"`, ""), want: RuleDashboard},
		{name: "dashboard AWS requests without their operation", template: replace(`{pushfn,service,function,operation} MetricName=\"AWSRequests\"`, `{pushfn,service,function} MetricName=\"AWSRequests\"`), want: RuleDashboard},
		{name: "dashboard averages counts", template: replace(`"stacked": true, "stat": "Sum"`, `"stacked": true, "stat": "Average"`), want: RuleDashboard},
		{name: "dashboard body not JSON", template: replace(`"start": "-PT3H",`, `"start": "-PT3H"`), want: RuleDashboard},
		{name: "no oldest message alarm", template: replace("MetricName: ApproximateAgeOfOldestMessage", "MetricName: ApproximateNumberOfMessagesNotVisible"), want: RuleAlarms},
		{name: "dead-letter alarm on the queue", template: replace("Value: !GetAtt DeadLetterQueue.QueueName", "Value: !GetAtt Queue.QueueName"), want: RuleAlarms},
		{name: "errors alarm on the api", template: replace("Value: !Ref DeliverFunction", "Value: !Ref ApiFunction"), want: RuleAlarms},
		{name: "alarm metric AWS never writes", template: replace("MetricName: Errors", "MetricName: Error"), want: RuleAlarms},
		{name: "alarm breaching without data", template: replace("TreatMissingData: notBreaching", "TreatMissingData: breaching"), want: RuleAlarms},
		{name: "alarm tells only when it fires", template: chain(replace("    Default: \"\"\n    AllowedPattern: \"^(arn:aws", "    Default: \"arn:aws:sns:eu-west-1:123456789012:ops\"\n    AllowedPattern: \"^(arn:aws"),
			replace("      OKActions: !If [NotifyAlarms, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n", "")), want: RuleAlarms},
		{name: "dashboard line not at the alarm", template: replace(`"value": ${OldestMessageAgeAlarmSeconds}`, `"value": 600`), want: RuleAlarms},
		{name: "throughput on demand", template: replace("      ProvisionedThroughput: !If\n        - ProvisionedTable", "      ProvisionedThroughput: !If\n        - UseIamAuth"), want: RuleBillingMode},
		{name: "scaling on demand", template: replace("    Condition: ProvisionedTable\n", ""), want: RuleBillingMode},
		{name: "provisioned index without throughput", template: chain(provisionedTable,
			replace("            ProjectionType: ALL\n          ProvisionedThroughput: !If\n            - ProvisionedTable", "            ProjectionType: ALL\n          ProvisionedThroughput: !If\n            - PublishEvents")), want: RuleBillingMode},
		{name: "provisioned index write not scaled", template: chain(provisionedTable,
			replace("table/${Table}/index/gsi2\"\n      ScalableDimension: dynamodb:index:WriteCapacityUnits", "table/${Table}/index/gsi1\"\n      ScalableDimension: dynamodb:index:WriteCapacityUnits")), want: RuleBillingMode},
		{name: "read scaled on write utilisation", template: chain(provisionedTable,
			replace("PredefinedMetricType: DynamoDBReadCapacityUtilization", "PredefinedMetricType: DynamoDBWriteCapacityUtilization")), want: RuleBillingMode},
		{name: "scaling range below the throughput", template: chain(provisionedTable, replace("MaxCapacity: !Ref TableReadCapacityMax", "MaxCapacity: 2")), want: RuleBillingMode},
		{name: "endpoint secrets key too short", template: replace(`!Sub "{{resolve:secretsmanager:${EndpointSecretsKey}}}"`, `"short"`), want: RuleEnvValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmpl, mk := template, makefile
			if tt.template != nil {
				tmpl = tt.template(tmpl)
			}
			if tt.makefile != nil {
				mk = tt.makefile(mk)
			}
			if tmpl == template && mk == makefile {
				t.Fatal("the edit changed nothing: the text it replaces is gone from the repository files")
			}
			tm, err := Parse([]byte(tmpl))
			if err != nil {
				t.Fatal(err)
			}
			problems := tm.Check(mk)
			for _, p := range problems {
				if p.Rule == tt.want {
					return
				}
			}
			t.Errorf("problems %v, want one for rule %s", problems, tt.want)
		})
	}
}

// provisionedTable sets TableBillingMode's default to PROVISIONED.
var provisionedTable = replace("    Default: PAY_PER_REQUEST\n", "    Default: PROVISIONED\n")

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// cut removes the text from the first from to the first to after it, to kept; it changes nothing
// when either is missing.
func cut(from, to string) func(string) string {
	return func(s string) string {
		before, after, ok := strings.Cut(s, from)
		if !ok {
			return s
		}
		if _, rest, ok := strings.Cut(after, to); ok {
			return before + to + rest
		}
		return s
	}
}

// chain applies edits in order.
func chain(edits ...func(string) string) func(string) string {
	return func(s string) string {
		for _, e := range edits {
			s = e(s)
		}
		return s
	}
}

// The template deploys what the endpoint routes need: the table's two indexes with the keys the
// store writes, the secret ENDPOINT_SECRETS_KEY comes from, Query on the indexes for the api
// function (endpoint and delivery listings), and a route for each endpoint route.
func TestEndpointResources(t *testing.T) {
	t.Parallel()
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := tm.Function("ApiFunction")
	if api.Secrets["ENDPOINT_SECRETS_KEY"] != "EndpointSecretsKey" {
		t.Errorf("ApiFunction secrets %v, want ENDPOINT_SECRETS_KEY from EndpointSecretsKey", api.Secrets)
	}
	if _, ok := api.Env["ENDPOINT_SECRETS_KEY"]; ok {
		t.Error("ENDPOINT_SECRETS_KEY is in Env; a secret belongs in Secrets only")
	}
	// The deliver function decrypts the secrets that sign pushes to endpoints; the relay only
	// reads endpoints to check they exist (GetItem on the table) and never sees the key.
	deliver, _ := tm.Function("DeliverFunction")
	if deliver.Secrets["ENDPOINT_SECRETS_KEY"] != "EndpointSecretsKey" {
		t.Errorf("DeliverFunction secrets %v, want ENDPOINT_SECRETS_KEY from EndpointSecretsKey", deliver.Secrets)
	}
	relay, _ := tm.Function("RelayFunction")
	if _, ok := relay.Secrets["ENDPOINT_SECRETS_KEY"]; ok {
		t.Error("RelayFunction gets ENDPOINT_SECRETS_KEY, which it never needs")
	}
	for _, name := range []string{"RelayFunction", "DeliverFunction"} {
		doc, _ := json.Marshal(tm.cf.GetAllServerlessFunctionResources()[name].Policies)
		if !strings.Contains(string(doc), `"dynamodb:GetItem"`) {
			t.Errorf("%s's policies grant no dynamodb:GetItem, which reading an endpoint needs: %s", name, doc)
		}
	}
	secret, ok := tm.cf.GetAllSecretsManagerSecretResources()["EndpointSecretsKey"]
	if !ok || secret.GenerateSecretString == nil || secret.GenerateSecretString.PasswordLength == nil ||
		*secret.GenerateSecretString.PasswordLength < config.MinEndpointSecretsKeyChars {
		t.Errorf("EndpointSecretsKey = %+v, want a generated secret of at least %d characters", secret, config.MinEndpointSecretsKeyChars)
	}
	table := tm.cf.GetAllDynamoDBTableResources()["Table"]
	got := map[string]string{}
	for _, ix := range table.GlobalSecondaryIndexes {
		var keys []string
		for _, k := range ix.KeySchema {
			keys = append(keys, k.AttributeName+":"+k.KeyType)
		}
		got[ix.IndexName] = strings.Join(keys, ",") + " " + aws.ToString(ix.Projection.ProjectionType)
	}
	want := map[string]string{}
	for _, ix := range store.Indexes() {
		want[ix.Name] = ix.PartitionKey + ":HASH," + ix.SortKey + ":RANGE ALL"
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("table indexes %v, want %v (as store.CreateTable makes them)", got, want)
	}
	fn := tm.cf.GetAllServerlessFunctionResources()["ApiFunction"]
	doc, _ := json.Marshal(fn.Policies)
	if !strings.Contains(string(doc), `"dynamodb:Query"`) || !strings.Contains(string(doc), `/index/*`) {
		t.Errorf("ApiFunction's policies grant no dynamodb:Query on the indexes: %s", doc)
	}
	keys := map[string]bool{}
	for _, r := range tm.cf.GetAllApiGatewayV2RouteResources() {
		keys[r.RouteKey] = true
	}
	for _, k := range []string{"POST /v1/endpoints", "GET /v1/endpoints", "GET /v1/endpoints/{id}", "PATCH /v1/endpoints/{id}",
		"DELETE /v1/endpoints/{id}", "GET /v1/endpoints/{id}/secret", "POST /v1/endpoints/{id}/secret/rotate",
		"GET /v1/endpoints/{id}/deliveries", "GET /v1/messages/{id}/deliveries", "POST /v1/messages/{id}/retry",
		"POST /v1/endpoints/{id}/recover", "GET /v1/recoveries/{id}"} {
		if !keys[k] {
			t.Errorf("no route %q", k)
		}
	}
}

// Each function is granted every DynamoDB action its code calls on the table, and no other: a
// missing one fails only in AWS (AccessDenied), where no test of this project runs.
func TestTableActionsCoverTheCalls(t *testing.T) {
	t.Parallel()
	tm, err := Load("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ingest := []string{
		"dynamodb:PutItem",    // a message's record (store.DynamoDB.Create)
		"dynamodb:GetItem",    // a replay's record, an endpoint (Get, GetEndpoint)
		"dynamodb:UpdateItem", // a replay of a record still accepted (MarkReplayed); a retry (Reopen, api only)
		"dynamodb:DeleteItem", // the undo of a record whose message could not be queued (Delete)
	}
	want := map[string][]string{
		// The api also writes endpoints (PutItem, DeleteItem) and lists (Query, on the indexes).
		"ApiFunction":   append(slices.Clone(ingest), "dynamodb:Query"),
		"RelayFunction": ingest,
		// Claims and results (Claim, Finish, Checkpoint), endpoints (GetEndpoint) and a
		// fan-out's listing of them (ListEndpoints).
		"DeliverFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
	}
	for name, actions := range want {
		doc, _ := json.Marshal(tm.cf.GetAllServerlessFunctionResources()[name].Policies)
		var granted []string
		for _, a := range []string{"PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchWriteItem", "TransactWriteItems"} {
			if strings.Contains(string(doc), `"dynamodb:`+a+`"`) {
				granted = append(granted, "dynamodb:"+a)
			}
		}
		slices.Sort(actions)
		slices.Sort(granted)
		if !slices.Equal(granted, actions) {
			t.Errorf("%s is granted %v, its code calls %v", name, granted, actions)
		}
	}
}

// EventBusName reaches the functions that publish operational events (api and deliver) as
// EVENT_BUS_NAME, and grants them events:PutEvents on that bus only when it is set; the
// template checks clean either way.
func TestEventBusWiring(t *testing.T) {
	t.Parallel()
	template, makefile := readRepoFiles(t)
	tests := []struct {
		name, bus string
	}{
		{name: "default: no events", bus: ""},
		{name: "a bus", bus: "ops-events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text := strings.Replace(template, "    Default: \"\"\n    AllowedPattern", "    Default: \""+tt.bus+"\"\n    AllowedPattern", 1)
			if text == template && tt.bus != "" {
				t.Fatal("the EventBusName parameter's default is gone from template.yaml")
			}
			tm, err := Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tm.Check(makefile) {
				t.Errorf("%v", p)
			}
			for _, name := range []string{"ApiFunction", "DeliverFunction", "RelayFunction"} {
				fn, _ := tm.Function(name)
				bus, declared := fn.Env["EVENT_BUS_NAME"]
				publishes := name != "RelayFunction"
				if declared != publishes || bus != tt.bus && publishes {
					t.Errorf("%s: EVENT_BUS_NAME %q (declared %v), want declared %v as %q", name, bus, declared, publishes, tt.bus)
				}
				doc, _ := json.Marshal(tm.cf.GetAllServerlessFunctionResources()[name].Policies)
				var v any
				_ = json.Unmarshal(doc, &v)
				got := putEventsResources(v)
				var want []string
				if publishes && tt.bus != "" {
					want = []string{"arn::events:us-east-1:123456789012:event-bus/" + tt.bus}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: events:PutEvents granted on %v, want %v", name, got, want)
				}
			}
		})
	}
}
