package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pushfn/pushfn/shared/local/emulator"
	statuspage "github.com/pushfn/pushfn/shared/local/status"
)

// After a known workload through the real stack, the status page loads in a real headless
// Chromium with no console error or exception, draws its charts, and shows the numbers of
// /status.json, which are those of the workload: the messages by state, the deliveries by
// outcome, per target host and per endpoint, the attempts and the operational events. The test
// writes the page's screenshot to .pushfn/status.png in the repository.
func TestIntegrationStatusPage(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	browser, err := emulator.Browser(ctx, emulator.Options{Root: s.root, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}

	// The workload: okN messages to one target, one to a target that answers 503 once (a
	// retry), goneN to a target, reached as localhost so it is a host of its own, that answers
	// 410 (failed, each an operational event), and epN to an endpoint.
	const okN, goneN, epN = 12, 2, 3
	ok := newTarget(t, s.key, http.StatusOK, 0, 0)
	flaky := newTarget(t, s.key, http.StatusOK, 1, http.StatusServiceUnavailable)
	gone := newTarget(t, s.key, http.StatusGone, 0, 0)
	hook := newTarget(t, s.key, http.StatusOK, 0, 0) // signed with the endpoint's secret: not checked here
	goneURL := strings.Replace(gone.url(), "127.0.0.1", "localhost", 1)
	var ep endpointView
	if code := s.do(t, ctx, http.MethodPost, "/v1/endpoints", map[string]any{"url": hook.url()}, &ep); code != http.StatusCreated {
		t.Fatalf("POST /v1/endpoints: %d", code)
	}
	msgs := []any{}
	for i := range okN {
		msgs = append(msgs, newMessage(ok.url(), i))
	}
	msgs = append(msgs, newMessage(flaky.url(), 0))
	for i := range goneN {
		msgs = append(msgs, newMessage(goneURL, i))
	}
	for i := range epN {
		msgs = append(msgs, map[string]any{"endpoint_id": ep.ID, "payload": map[string]any{"n": i}})
	}
	var out struct {
		Messages []status `json:"messages"`
	}
	if code := s.do(t, ctx, http.MethodPost, "/v1/messages/batch", map[string]any{"messages": msgs}, &out); code != http.StatusAccepted || len(out.Messages) != len(msgs) {
		t.Fatalf("POST batch: %d with %d messages, want 202 with %d", code, len(out.Messages), len(msgs))
	}
	for _, m := range out.Messages {
		s.awaitFinal(t, ctx, m.ID)
	}

	host := func(u string) string { return strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/push") }
	delivered, total := okN+1+epN, okN+1+goneN+epN
	want := map[string]float64{
		"messages.by_state.accepted": 0, "messages.by_state.delivering": 0, "messages.by_state.retrying": 0,
		"messages.by_state.delivered": float64(delivered), "messages.by_state.failed": goneN, "messages.by_state.expired": 0,
		"totals.accepted": float64(total), "totals.replayed": 0, "totals.refused": 0,
		"totals.deliveries.delivered": float64(delivered), "totals.deliveries.retrying": 1,
		"totals.deliveries.failed": goneN, "totals.deliveries.expired": 0,
		"totals.attempts": float64(total + 1), "latency.count": float64(total + 1),
		"target_hosts[" + host(ok.url()) + "].delivered": okN, "target_hosts[" + host(ok.url()) + "].total": okN,
		"target_hosts[" + host(flaky.url()) + "].delivered": 1, "target_hosts[" + host(flaky.url()) + "].retrying": 1,
		"target_hosts[" + host(goneURL) + "].failed": goneN, "target_hosts[" + host(hook.url()) + "].delivered": epN,
		"endpoints[" + ep.ID + "].delivered": epN, "endpoints[" + ep.ID + "].total": epN,
		"events.total": goneN, "events.by_detail_type[pushfn.delivery.failed]": goneN, "totals.unreadable": 0,
	}
	// The functions write their documents after their last result, and the table is counted
	// every 2 s: wait until the JSON shows the whole workload.
	var snap map[string]float64
	for {
		snap = figures(fetchStatus(t, ctx, s.status))
		if mismatch(snap, want) == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/status.json never showed the workload: %s", mismatch(snap, want))
		case <-time.After(200 * time.Millisecond):
		}
	}

	// One browser, bounded by ctx; every console error or warning, exception and browser log
	// error or warning of its tab recorded, in order.
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 1400),
		chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Do(tab); err != nil { // starts the browser and attaches the tab
		t.Fatalf("start Chromium (%s): %v", browser, err)
	}
	err = chromedp.Listen(tab, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			p = fmt.Sprintf("exception: %s at %s:%d", d.Text, d.URL, d.LineNumber+1)
			if d.Exception != nil {
				p += ": " + d.Exception.Description
			}
		case *log.EventEntryAdded:
			if e := ev.Entry; e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning {
				p = fmt.Sprintf("browser log %s (%s): %s %s", e.Level, e.Source, e.Text, e.URL)
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The page is live once it has drawn a poll, and final once it shows the workload's
	// delivered messages and events; then its figures are read.
	if err := chromedp.Do(tab, chromedp.Navigate(s.status+"/"), chromedp.WaitVisible(chromedp.CSS(`#state[data-state="live"]`))); err != nil {
		t.Fatalf("load the status page in Chromium: %v", err)
	}
	final := fmt.Sprintf(`(() => {
		const f = (name) => { const e = document.querySelector('[data-figure="' + name + '"]'); return e && e.textContent; };
		return f("messages.by_state.delivered") === "%d" && f("events.total") === "%d";
	})()`, delivered, goneN)
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](final, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("the status page never showed %d messages delivered and %d events: %v", delivered, goneN, err)
	}
	shown, err := chromedp.Run(tab, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll("[data-figure]")].map(e => [e.dataset.figure, e.textContent]))`))
	if err != nil {
		t.Fatalf("read the page's figures: %v", err)
	}
	charts, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("svg rect").length`))
	if err != nil {
		t.Fatalf("count the page's bars: %v", err)
	}
	// The page and the JSON the README's command fetches now agree on every figure the page
	// shows (but the rate, which moves with the clock), and the JSON has no figure the page
	// leaves out.
	snap = figures(readmeStatus(t, ctx, s.status))
	for name, text := range shown {
		if name == "rate.per_second" {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			t.Errorf("the page shows %s as %q, not a number", name, text)
			continue
		}
		if j, ok := snap[name]; !ok || j != v {
			t.Errorf("the page shows %s = %v, /status.json %v (present %v)", name, v, j, ok)
		}
	}
	for name := range snap {
		if _, ok := shown[name]; !ok {
			t.Errorf("/status.json has %s, which the page does not show", name)
		}
	}
	if m := mismatch(snap, want); m != "" {
		t.Errorf("after the page loaded, /status.json: %s", m)
	}
	// The charts: a bar per message state and per latency percentile, at least.
	if charts < 9 {
		t.Errorf("%d SVG bars on the page, want at least 9", charts)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(s.root, stateDir, "status.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("the screenshot is not a PNG: % x", png[:min(len(png), 8)])
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the page: %s", p)
	}
	t.Logf("the page shows %d figures, as /status.json; %d SVG bars; screenshot %s (%d bytes)", len(shown), charts, shot, len(png))
}

// fetchStatus returns the status page's /status.json.
func fetchStatus(t *testing.T, ctx context.Context, base string) statuspage.Snapshot {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /status.json: %v", err)
	}
	defer res.Body.Close()
	var snap statuspage.Snapshot
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		t.Fatalf("GET /status.json: %v", err)
	}
	return snap
}

// readmeStatus runs the command of the README's Status page section against the page at base,
// checks its answer has the shape the README shows, and returns it.
func readmeStatus(t *testing.T, ctx context.Context, base string) statuspage.Snapshot {
	t.Helper()
	var cmds []readmeCommand
	for _, c := range readmeCommands(readReadme(t)) {
		if c.section == "Status page" {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) != 1 || !strings.Contains(cmds[0].text, "http://127.0.0.1:3001/status.json") {
		t.Fatalf("the README's Status page section has commands %q, want one fetching http://127.0.0.1:3001/status.json", cmds)
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(cmds[0].text, "http://127.0.0.1:3001", base)).Output()
	if err != nil {
		t.Fatalf("%s: %v", cmds[0].text, err)
	}
	var snap statuspage.Snapshot
	if err := json.Unmarshal(out, &snap); err != nil {
		t.Fatalf("%s: %v: %s", cmds[0].text, err, out)
	}
	got, documented := jsonShape(t, out), jsonShape(t, []byte(cmds[0].doc))
	if !slices.Equal(got, documented) {
		t.Errorf("%s answers members %q; the README shows %q", cmds[0].text, got, documented)
	}
	return snap
}

// jsonShape lists the members of a JSON document as paths ("rate.series[].t"), leaving out the
// names of members that are data (states, outcomes, codes, detail types, an event's detail).
func jsonShape(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, doc)
	}
	data := map[string]bool{"by_state": true, "fanout_deliveries_by_state": true, "refused_by_code": true,
		"deliveries": true, "outcomes": true, "by_detail_type": true, "detail": true}
	set := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := strings.TrimPrefix(path+"."+k, ".")
				set[p] = true
				if !data[k] {
					walk(p, x)
				}
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", v)
	return slices.Sorted(maps.Keys(set))
}

// figures names each number of a snapshot as the page's data-figure attributes do.
func figures(s statuspage.Snapshot) map[string]float64 {
	f := map[string]float64{
		"totals.accepted": float64(s.Totals.Accepted), "totals.replayed": float64(s.Totals.Replayed),
		"totals.refused": float64(s.Totals.Refused), "totals.attempts": float64(s.Totals.Attempts),
		"totals.batches": float64(s.Totals.Batches), "totals.records_not_started": float64(s.Totals.RecordsNotStarted),
		"totals.lease_conflicts": float64(s.Totals.LeaseConflicts), "rate.per_second": s.Rate.PerSecond,
		"totals.records": float64(s.Totals.Records), "totals.documents": float64(s.Totals.Documents),
		"totals.unreadable": float64(s.Totals.Unreadable),
	}
	for o, v := range s.Totals.Deliveries {
		f["totals.deliveries."+o] = float64(v)
	}
	if s.Messages != nil {
		for st, v := range s.Messages.Messages {
			f["messages.by_state."+st] = float64(v)
		}
		for st, v := range s.Messages.Deliveries {
			f["messages.fanout_deliveries_by_state."+st] = float64(v)
		}
	}
	if l := s.Latency; l.Count > 0 {
		for k, v := range map[string]float64{"count": float64(l.Count), "p50": l.P50, "p90": l.P90, "p99": l.P99, "min": l.Min, "mean": l.Mean, "max": l.Max} {
			f["latency."+k] = v
		}
	}
	for prefix, rows := range map[string][]statuspage.Row{"target_hosts": s.TargetHosts, "endpoints": s.Endpoints} {
		for _, r := range rows {
			for o, v := range r.Outcomes {
				f[prefix+"["+r.Key+"]."+o] = float64(v)
			}
			f[prefix+"["+r.Key+"].total"] = float64(r.Total)
		}
	}
	if e := s.Events; e != nil {
		f["events.total"] = float64(e.Total)
		for typ, v := range e.ByDetailType {
			f["events.by_detail_type["+typ+"]"] = float64(v)
		}
	}
	return f
}

// mismatch says which figures of got differ from want, "" when none does.
func mismatch(got, want map[string]float64) string {
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := got[k]; !ok || v != want[k] {
			diff = append(diff, fmt.Sprintf("%s = %v (present %v), want %v", k, v, ok, want[k]))
		}
	}
	return strings.Join(diff, "; ")
}

// testWriter reports an install's progress in the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
