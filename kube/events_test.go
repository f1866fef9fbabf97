package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
)

// The Recorder's logic on client-go's fake dynamic client (the real API server's validation of
// the same Events is exercised by integration/serve_test.go).
func TestRecorderAnnouncesChangesOnce(t *testing.T) {
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{EventsGVR: "EventList"})
	c := NewForDynamic(dyn, "https://api", "db")
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	newRecorder := func() *Recorder {
		r := c.Recorder("pod-1")
		r.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
		return r
	}
	pass := Verdict{Target: "db/pg/backup", Namespace: "db", Cluster: "pg", UID: "uid-1", Note: "backup s3://b/p (serverName pg): no check failed"}
	fail := pass
	fail.Failed, fail.Note = true, "backup s3://b/p (serverName pg): bucket failed: 403 Fix: grant s3:ListBucket"
	events := func() map[string]int64 {
		l, err := dyn.Resource(EventsGVR).Namespace("db").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, e := range l.Items {
			reason, _, _ := unstructured.NestedString(e.Object, "reason")
			n, ok, _ := unstructured.NestedInt64(e.Object, "series", "count")
			if !ok {
				n = 1
			}
			out[reason] += n
			if uid, _, _ := unstructured.NestedString(e.Object, "regarding", "uid"); uid != "uid-1" || !strings.HasPrefix(e.GetName(), "pg.") {
				t.Errorf("Event %s regards uid %q", e.GetName(), uid)
			}
		}
		return out
	}
	observe := func(r *Recorder, v Verdict, want bool) {
		t.Helper()
		got, err := r.Observe(context.Background(), v)
		if err != nil || got != want {
			t.Fatalf("Observe(failed=%v) = %v, %v; want %v", v.Failed, got, err, want)
		}
	}
	r := newRecorder()
	observe(r, pass, true) // the first verdict is announced
	observe(r, pass, false)
	observe(r, fail, true)
	observe(r, fail, false)
	observe(r, pass, true) // the same note again: the same Event, seen twice
	if got := events(); got[ReasonPassed] != 2 || got[ReasonFailed] != 1 || len(got) != 2 {
		t.Errorf("events %v", got)
	}
	// A new process (a restart, the next CronJob run) knows the last verdict from the Events.
	r = newRecorder()
	observe(r, pass, false)
	observe(r, fail, true)
	if got := events(); got[ReasonFailed] != 2 {
		t.Errorf("after a restart: %v", got)
	}
	// The same name made again is another Cluster (uid): its first verdict is announced.
	again := fail
	again.UID = "uid-2"
	observe(r, again, true)
}

func TestEventNoteIsCut(t *testing.T) {
	v := Verdict{Target: "db/pg/backup", Cluster: "pg", Failed: true, Note: strings.Repeat("é", 600)}
	if n := note(v); len(n) > noteLimit || !strings.HasSuffix(n, "…") {
		t.Errorf("note of %d bytes", len(n))
	}
	if EventName(v) == EventName(Verdict{Target: "db/pg/backup", Cluster: "pg", Note: v.Note}) {
		t.Error("a failure and a pass share an Event name")
	}
}
