package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// recordEvents hands every target's verdict to the recorder, which records an Event on the
// Cluster when it changed; done is called for each Event recorded or that could not be.
func recordEvents(ctx context.Context, rec *kube.Recorder, m *report.Matrix, set *manifest.Set, done func(kube.Verdict, error)) {
	uids := map[string]string{}
	for _, c := range set.Clusters {
		uids[c.Meta.Namespace+"/"+c.Meta.Name] = c.Meta.UID
	}
	for _, t := range m.Targets {
		v := kube.Verdict{Target: t.ID, Namespace: t.Cluster.Namespace, Cluster: t.Cluster.Name,
			UID: uids[t.Cluster.Namespace+"/"+t.Cluster.Name], Failed: t.Failed(), Note: EventNote(t)}
		recorded, err := rec.Observe(ctx, v)
		if recorded || err != nil {
			done(v, err)
		}
	}
}

// EventNote is the note of a target's Event: what it is, then each failed check with its
// reason and remediation (or that none failed). Messages are already redacted and one line.
func EventNote(t *report.Target) string {
	what := t.Role
	if t.DestinationPath != "" {
		what += " " + t.DestinationPath
	}
	if t.ServerName != "" {
		what += fmt.Sprintf(" (serverName %s)", t.ServerName)
	}
	if !t.Failed() {
		warns := 0
		for _, c := range t.Checks {
			if c.Status == report.Warn {
				warns++
			}
		}
		if warns > 0 {
			return fmt.Sprintf("%s: no check failed (%d warning(s))", what, warns)
		}
		return what + ": no check failed"
	}
	var parts []string
	for _, c := range t.Checks {
		if c.Status != report.Fail {
			continue
		}
		p := c.ID + " failed: " + c.Message
		if c.Remediation != "" {
			p += " Fix: " + c.Remediation
		}
		parts = append(parts, p)
	}
	for _, k := range t.Leftovers {
		parts = append(parts, "probe object left behind: "+k+" Fix: delete it")
	}
	return what + ": " + strings.Join(parts, "; ")
}

// instance names this process in the Events it records: the Pod's name (POD_NAME from the
// downward API, or HOSTNAME, which Kubernetes sets to it).
func instance(io *IOStreams) string {
	for _, k := range []string{"POD_NAME", "HOSTNAME"} {
		if v := io.getenv(k); v != "" {
			return v
		}
	}
	return "cnpg-preflight"
}
