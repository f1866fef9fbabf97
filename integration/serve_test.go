package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/kube"
)

// event is what a test reads of an events.k8s.io/v1 Event.
type event struct {
	name, reason, typ, note, regardingKind, regardingName, regardingUID string
	count                                                               int64
}

// clusterEvents lists the Events recorded on a Cluster (events.k8s.io/v1, the admin identity).
func clusterEvents(t *testing.T, k *testenv.Kube, ns, cluster string) []event {
	t.Helper()
	l, err := k.Dyn.Resource(kube.EventsGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	var out []event
	for _, u := range l.Items {
		s := func(f ...string) string { v, _, _ := unstructured.NestedString(u.Object, f...); return v }
		e := event{name: u.GetName(), reason: s("reason"), typ: s("type"), note: s("note"), regardingKind: s("regarding", "kind"), regardingName: s("regarding", "name"), regardingUID: s("regarding", "uid"), count: 1}
		if n, ok, _ := unstructured.NestedInt64(u.Object, "series", "count"); ok {
			e.count = n
		}
		if e.regardingName == cluster {
			out = append(out, e)
		}
	}
	return out
}

func findEvent(es []event, reason string) *event {
	for i := range es {
		if es[i].reason == reason {
			return &es[i]
		}
	}
	return nil
}

// serve, run with the ServiceAccount and Role that `job --serve` prints, checks the Clusters of a
// namespace every 2 s while a real Prometheus scrapes it. A MinIO user's policy is detached and
// attached again mid-run: the metric and the Event on the Cluster follow within one interval,
// and an Event that repeats is one object with a series count. A Cluster created later is
// discovered; its Secret, not in the Role, is a credentials failure naming it until job --serve
// is run and applied again.
func TestServePrometheusEventsRBAC(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	mc := testenv.MC(t, e.srv)
	key, secret, policy := testenv.MinIOUser(t, mc, bucket)
	ep := e.srv.Get("MINIO_ENDPOINT")
	ns := k.Namespace(t, "pf-serve-")
	k.Apply(t, ns, kubeCluster("pg-serve", bucket, ep, key, secret, ""))
	uid := string(k.Get(t, "Cluster", ns, "pg-serve").GetUID())

	const interval = 2 * time.Second
	r := testenv.Run(t, "", "job", "--serve", "--kubeconfig", k.Kubeconfig, "-n", ns, "--interval", interval.String(), "--image", "cnpg-preflight:test")
	if r.Code != 0 || !strings.Contains(r.Stdout, "resourceNames: [pg-serve-creds]") {
		t.Fatalf("job --serve: %d %s\n%s", r.Code, r.Stderr, r.Stdout)
	}
	k.Apply(t, ns, r.Stdout) // the API server validates the Deployment and the Service too
	kc := k.TokenKubeconfig(t, k.Token(t, ns, "cnpg-preflight"), ns)
	srv := testenv.StartServe(t, "--kubeconfig", kc, "-n", ns, "--interval", interval.String(), "--timeout", "10s")
	prom := testenv.StartPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))

	target := ns + "/pg-serve/backup"
	failing := fmt.Sprintf(`cnpg_preflight_check_status{target=%q,check="bucket",status="fail"}`, target)
	promRounds := func() float64 { // as Prometheus last scraped it
		if s := prom.Query(t, `cnpg_preflight_rounds_total`); len(s) == 1 {
			return s[0].Value
		}
		return -1
	}
	serveRounds := func() float64 { // as serve has it now
		_, body := srv.Get(t, "/metrics")
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "cnpg_preflight_rounds_total "); ok {
				var n float64
				fmt.Sscan(v, &n)
				return n
			}
		}
		return -1
	}
	value := func(expr string) float64 {
		if s := prom.Query(t, expr); len(s) == 1 {
			return s[0].Value
		}
		return -1
	}
	if ok, _ := testenv.WaitFor(60*time.Second, func() bool { return value(failing) == 0 }); !ok {
		t.Fatalf("Prometheus never saw a passing bucket check (RBAC not effective yet?)\n%s", srv.Log())
	}
	if code, _ := srv.Get(t, "/readyz"); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	if v := value(fmt.Sprintf(`sum(cnpg_preflight_check_status{target=%q,status="fail"})`, target)); v != 0 {
		t.Errorf("%v checks fail at the start\n%s", v, srv.Log())
	}
	if ok, _ := testenv.WaitFor(10*time.Second, func() bool { return findEvent(clusterEvents(t, k, ns, "pg-serve"), kube.ReasonPassed) != nil }); !ok {
		t.Errorf("no %s Event for the first verdict\n%s", kube.ReasonPassed, srv.Log())
	}

	// flip flips the user's access and waits for the metric: it must change within one interval
	// (the next round) plus a scrape — at the latest in the round after the one in flight.
	flip := func(verb string, want float64) {
		t.Helper()
		before := serveRounds()
		mc("admin", "policy", verb, "local", policy, "--user", key)
		ok, took := testenv.WaitFor(3*interval, func() bool { return value(failing) == want })
		after := promRounds() // of the same scrape as the value
		t.Logf("policy %s: %s = %v after %s (rounds %v → %v)", verb, failing, want, took.Round(time.Millisecond), before, after)
		if !ok || took > interval+interval/10+3*time.Second || after > before+2 {
			t.Fatalf("policy %s: %s should be %v within one interval (%s) and a scrape; took %s, rounds %v → %v\n%s", verb, failing, want, interval, took, before, after, srv.Log())
		}
	}
	waitEvent := func(reason string, count int64) event {
		t.Helper()
		var got *event
		ok, _ := testenv.WaitFor(5*time.Second, func() bool {
			got = findEvent(clusterEvents(t, k, ns, "pg-serve"), reason)
			return got != nil && got.count == count
		})
		if !ok {
			t.Fatalf("no %s Event with count %d: %+v\n%s", reason, count, clusterEvents(t, k, ns, "pg-serve"), srv.Log())
		}
		return *got
	}

	flip("detach", 1)
	ev := waitEvent(kube.ReasonFailed, 1)
	t.Logf("Event %s %s: %s", ev.typ, ev.reason, ev.note)
	if ev.typ != "Warning" || ev.regardingKind != "Cluster" || ev.regardingUID != uid ||
		!strings.HasPrefix(ev.note, fmt.Sprintf("backup s3://%s/kube (serverName pg-serve): bucket failed: ", bucket)) || !strings.Contains(ev.note, " Fix: ") {
		t.Errorf("failure Event: %+v", ev)
	}
	// kubectl describe cluster finds it (core/v1 Events by the Cluster's name, kind and uid).
	described := false
	for _, d := range k.DescribeEvents(t, k.Get(t, "Cluster", ns, "pg-serve")) {
		m, _, _ := unstructured.NestedString(d.Object, "message")
		described = described || d.Object["reason"] == kube.ReasonFailed && m == ev.note
	}
	if !described {
		t.Errorf("kubectl describe would not show the %s Event", kube.ReasonFailed)
	}

	flip("attach", 0)
	waitEvent(kube.ReasonPassed, 2) // the same note as the first verdict: one Event, seen twice
	flip("detach", 1)
	waitEvent(kube.ReasonFailed, 2)
	flip("attach", 0)
	if n := len(clusterEvents(t, k, ns, "pg-serve")); n != 2 {
		t.Errorf("%d Events on the Cluster, want 2 (one per verdict, repeats counted)", n)
	}

	// A Cluster made after the start is discovered; its Secret is not in the Role yet.
	k.Apply(t, ns, kubeCluster("pg-late", bucket, ep, key, secret, ""))
	late := fmt.Sprintf(`cnpg_preflight_check_status{target="%s/pg-late/backup",check="credentials",status="%%s"}`, ns)
	if ok, _ := testenv.WaitFor(4*interval, func() bool { return value(fmt.Sprintf(late, "fail")) == 1 }); !ok {
		t.Fatalf("the new Cluster's credentials check does not fail\n%s", srv.Log())
	}
	var lateEv *event
	testenv.WaitFor(5*time.Second, func() bool {
		lateEv = findEvent(clusterEvents(t, k, ns, "pg-late"), kube.ReasonFailed)
		return lateEv != nil
	})
	if lateEv != nil {
		t.Logf("Event %s %s: %s", lateEv.typ, lateEv.reason, lateEv.note)
	}
	if lateEv == nil || !strings.Contains(lateEv.note, fmt.Sprintf(`forbidden: the identity may not get secrets "pg-late-creds" in namespace %s (RBAC)`, ns)) ||
		!strings.Contains(lateEv.note, "add it to the resourceNames of the Role's secrets rule") {
		t.Errorf("forbidden Secret Event: %+v", lateEv)
	}
	r = testenv.Run(t, "", "job", "--serve", "--kubeconfig", k.Kubeconfig, "-n", ns, "--interval", interval.String())
	k.Apply(t, ns, r.Stdout)
	if ok, _ := testenv.WaitFor(6*interval, func() bool { return value(fmt.Sprintf(late, "pass")) == 1 }); !ok {
		t.Errorf("after job --serve was applied again, the new Cluster's credentials check does not pass\n%s", srv.Log())
	}

	// /metrics follows the conventions (promtool's linter) and carries no secret; nor does the log.
	_, body := srv.Get(t, "/metrics")
	lint := exec.Command("/usr/bin/promtool", "check", "metrics")
	lint.Stdin = strings.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, s := range []string{secret, key} {
		if strings.Contains(body, s) || strings.Contains(srv.Log(), s) {
			t.Errorf("/metrics or the log carries a credential")
		}
	}
	if code := srv.Stop(); code != 0 || !strings.Contains(srv.Log(), "stopped: interrupted by SIGTERM") {
		t.Errorf("stop: exit %d\n%s", code, srv.Log())
	}
}

// check --events in the Job: an Event when the verdict changes, none when it does not.
func TestKubeCheckEvents(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	ns := k.Namespace(t, "pf-ev-")
	user, pass, ep := e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"), e.srv.Get("MINIO_ENDPOINT")
	k.Apply(t, ns, kubeCluster("pg-ev", bucket, ep, user, pass, ""))
	r := testenv.Run(t, "", "job", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-ev", "-n", ns, "--events")
	if r.Code != 0 {
		t.Fatalf("job --events: %d %s", r.Code, r.Stderr)
	}
	docs := strings.Split(r.Stdout, "---\n")
	k.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: pg-ev}\n---\n"+strings.Join(docs[:len(docs)-1], "---\n")) // CNPG makes the SA; no Job runs here
	kc := k.TokenKubeconfig(t, k.Token(t, ns, "pg-ev"), ns)
	check := func(wantCode int) testenv.Result {
		t.Helper()
		var res testenv.Result
		testenv.WaitFor(5*time.Second, func() bool { // RBAC takes a moment to apply
			res = testenv.Run(t, "", "check", "--kubeconfig", kc, "--cluster", "pg-ev", "--events", "-o", "json")
			return res.Code == wantCode && !strings.Contains(res.Stderr, "forbidden")
		})
		if res.Code != wantCode || res.Stderr != "" {
			t.Fatalf("check --events: exit %d, want %d\n%s", res.Code, wantCode, res.Stderr)
		}
		return res
	}
	check(0)
	check(0)
	if es := clusterEvents(t, k, ns, "pg-ev"); len(es) != 1 || es[0].reason != kube.ReasonPassed || es[0].count != 1 {
		t.Errorf("after two passing runs: %+v (one Event; an unchanged verdict is not announced again)", es)
	}
	k.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata: {name: pg-ev-creds}\nstringData: {ACCESS_KEY_ID: "+user+", ACCESS_SECRET_KEY: wrong-secret-value}\n")
	res := check(1)
	check(1)
	es := clusterEvents(t, k, ns, "pg-ev")
	f := findEvent(es, kube.ReasonFailed)
	if len(es) != 2 || f == nil || f.count != 1 || f.typ != "Warning" || !strings.Contains(f.note, res.CheckOf(ns+"/pg-ev/backup", "bucket").Message) {
		t.Errorf("after two failing runs: %+v", es)
	}
	k.Apply(t, ns, kubeCluster("pg-ev", bucket, ep, user, pass, ""))
	check(0)
	if p := findEvent(clusterEvents(t, k, ns, "pg-ev"), kube.ReasonPassed); p == nil || p.count != 2 {
		t.Errorf("passing again: %+v (the first Event, seen twice)", p)
	}
}

// The rule files of deploy/prometheus pass promtool's checks and unit tests.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	testenv.RequireBinary(t, "/usr/bin/promtool")
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command("/usr/bin/promtool", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
