package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// EventsGVR is the Events API the verdicts are recorded with.
var EventsGVR = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}

// Event reasons, fields and labels (stable: alerts and `kubectl get events --field-selector`
// may use them).
const (
	ReasonFailed    = "PreflightFailed"
	ReasonPassed    = "PreflightPassed"
	EventController = "cnpg-preflight"
	EventAction     = "Check"
	// LabelTarget carries a hash of the target ID and the Cluster's uid (label values are limited
	// to 63 characters; a Cluster made again under the same name starts a new history); the
	// annotation of the same name holds the ID itself.
	LabelTarget  = "cnpg-preflight.io/target"
	LabelVerdict = "cnpg-preflight.io/verdict" // failed or passed
	noteLimit    = 1024                        // the API server's limit for note, in bytes
)

// Verdict is one target's outcome, recorded as an Event on its Cluster.
type Verdict struct {
	Target    string // stable target ID (namespace/cluster/role[/source])
	Namespace string // the Cluster's
	Cluster   string
	UID       string // the Cluster's uid: kubectl describe finds Events by it
	Failed    bool
	Note      string // what failed and how to fix it, or that every check passes
}

// Recorder records an Event on a target's Cluster when its verdict changes (pass → fail and
// back). It remembers each target's last verdict; the first time it meets a target it reads the
// newest Event it recorded for it before (an earlier process, or the previous run of a CronJob),
// so an unchanged verdict is not announced again. The same Event (same target, reason and note)
// is never created twice: its series count goes up instead.
type Recorder struct {
	c        *Client
	instance string
	now      func() time.Time

	mu    sync.Mutex
	known map[string]*history // by targetHash
}

type history struct {
	failed *bool            // the last verdict recorded; nil: none
	counts map[string]int64 // Event name → occurrences recorded
}

// Recorder returns an Event recorder; instance names the reporting process (the Pod's name).
func (c *Client) Recorder(instance string) *Recorder {
	if instance == "" {
		instance = EventController
	}
	return &Recorder{c: c, instance: text.Truncate(instance, 128, ""), now: time.Now, known: map[string]*history{}}
}

func hash16(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// targetHash identifies a target of one Cluster incarnation (its uid).
func targetHash(v Verdict) string { return hash16(v.Target, v.UID) }

// EventName is the name of the Event recorded for v: the Cluster's name and a hash of the
// target, the Cluster's uid, the reason and the note, so that a repeated Event is the same object.
func EventName(v Verdict) string {
	reason, _ := reasonOf(v)
	c := v.Cluster
	if len(c) > 253-17 {
		c = c[:253-17]
	}
	return c + "." + hash16(v.Target, v.UID, reason, note(v))
}

func reasonOf(v Verdict) (reason, typ string) {
	if v.Failed {
		return ReasonFailed, "Warning"
	}
	return ReasonPassed, "Normal"
}

func note(v Verdict) string { return text.Truncate(v.Note, noteLimit, "…") }

func verdictLabel(failed bool) string {
	if failed {
		return "failed"
	}
	return "passed"
}

// Observe records an Event for v when its verdict differs from the last one recorded for the
// target (or none is known). It reports whether it recorded one.
func (r *Recorder) Observe(ctx context.Context, v Verdict) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.known[targetHash(v)]
	if h == nil {
		var err error
		if h, err = r.load(ctx, v); err != nil {
			return false, err
		}
		r.known[targetHash(v)] = h
	}
	if h.failed != nil && *h.failed == v.Failed {
		return false, nil
	}
	name := EventName(v)
	now := metav1.NewMicroTime(r.now())
	ri := r.c.dyn.Resource(EventsGVR).Namespace(v.Namespace)
	n, seen := h.counts[name]
	if !seen {
		_, err := ri.Create(ctx, r.event(v, name, now), metav1.CreateOptions{})
		switch {
		case err == nil:
			n = 1
		case apierrors.IsAlreadyExists(err):
			seen, n = true, 1 // recorded by another process since we looked
		default:
			return false, r.c.apiError("create", "events.events.k8s.io", v.Namespace, "", err)
		}
	}
	if seen {
		n++
		patch, _ := json.Marshal(map[string]any{"series": map[string]any{"count": n, "lastObservedTime": now}})
		if _, err := ri.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				return false, r.c.apiError("patch", "events.events.k8s.io", v.Namespace, name, err)
			}
			// expired meanwhile (Events live an hour by default): record it anew
			if _, err := ri.Create(ctx, r.event(v, name, now), metav1.CreateOptions{}); err != nil {
				return false, r.c.apiError("create", "events.events.k8s.io", v.Namespace, "", err)
			}
			n = 1
		}
	}
	h.counts[name] = n
	failed := v.Failed
	h.failed = &failed
	return true, nil
}

func (r *Recorder) event(v Verdict, name string, now metav1.MicroTime) *unstructured.Unstructured {
	reason, typ := reasonOf(v)
	regarding := map[string]any{"apiVersion": ClustersGVR.GroupVersion().String(), "kind": "Cluster", "namespace": v.Namespace, "name": v.Cluster}
	if v.UID != "" {
		regarding["uid"] = v.UID
	}
	ts, _ := now.MarshalJSON()
	var eventTime string
	json.Unmarshal(ts, &eventTime)
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": EventsGVR.GroupVersion().String(),
		"kind":       "Event",
		"metadata": map[string]any{
			"name":        name,
			"namespace":   v.Namespace,
			"labels":      map[string]any{"app.kubernetes.io/name": "cnpg-preflight", LabelTarget: targetHash(v), LabelVerdict: verdictLabel(v.Failed)},
			"annotations": map[string]any{LabelTarget: v.Target},
		},
		"eventTime":           eventTime,
		"reportingController": EventController,
		"reportingInstance":   r.instance,
		"action":              EventAction,
		"reason":              reason,
		"type":                typ,
		"note":                note(v),
		"regarding":           regarding,
	}}
}

// load reads the Events recorded for v's target before: their occurrence counts and the
// verdict of the newest.
func (r *Recorder) load(ctx context.Context, v Verdict) (*history, error) {
	l, err := r.c.dyn.Resource(EventsGVR).Namespace(v.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelTarget + "=" + targetHash(v)})
	if err != nil {
		return nil, r.c.apiError("list", "events.events.k8s.io", v.Namespace, "", err)
	}
	h := &history{counts: map[string]int64{}}
	var newest time.Time
	for _, e := range l.Items {
		if e.GetAnnotations()[LabelTarget] != v.Target {
			continue // a hash collision
		}
		n, ok, _ := unstructured.NestedInt64(e.Object, "series", "count")
		if !ok {
			n = 1
		}
		h.counts[e.GetName()] = n
		at := microTime(e.Object, "eventTime")
		if t := microTime(e.Object, "series", "lastObservedTime"); t.After(at) {
			at = t
		}
		if failed := e.GetLabels()[LabelVerdict] == "failed"; h.failed == nil || at.After(newest) {
			newest, h.failed = at, &failed
		}
	}
	return h, nil
}

func microTime(obj map[string]any, fields ...string) time.Time {
	s, _, _ := unstructured.NestedString(obj, fields...)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Reason is the reason of v's Event: PreflightFailed or PreflightPassed.
func (v Verdict) Reason() string {
	r, _ := reasonOf(v)
	return r
}
