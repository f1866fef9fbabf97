package targets

import (
	"fmt"
	"strings"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// statusText is an outside string (a status message, possibly the last archive error) made safe
// to print: redacted (signatures, keys, tokens), sanitized and capped.
func statusText(s string) string {
	var r *providers.Redactor
	return text.Cap(text.Sanitize(r.Redact(strings.TrimSpace(s))), 500)
}

// statusFindings reads what the live Cluster and the plugin's ObjectStore already report about
// the target that archives WAL and takes backups: the Cluster's ContinuousArchiving condition
// (its message is the last archive error) and, for the plugin, the ObjectStore's
// status.serverRecoveryWindow for the serverName (the Cluster's firstRecoverabilityPoint and
// lastSuccessfulBackup are deprecated and not updated with plugins).
func statusFindings(c *manifest.Cluster, t *Target) (notes []string, fs []providers.Finding) {
	if t.Role != RoleBackup {
		return nil, nil
	}
	if st := c.Status; st != nil {
		for _, cond := range st.Conditions {
			if cond.Type != "ContinuousArchiving" {
				continue
			}
			msg := statusText(cond.Message)
			switch cond.Status {
			case "True":
				notes = append(notes, "the Cluster reports ContinuousArchiving=True")
			case "False":
				what := "the Cluster reports ContinuousArchiving=False"
				if r := statusText(cond.Reason); r != "" {
					what += " (" + r + ")"
				}
				if msg != "" {
					what += ": " + msg
				}
				fs = append(fs, providers.Warnf("status.conditions[ContinuousArchiving]", "read the last archive error above and the instance's logs; the checks of this target say whether the object store is at fault",
					"%s — WAL archiving is failing now", what))
			}
		}
	}
	if t.Store != nil && t.Store.Status != nil {
		w, ok := t.Store.Status.ServerRecoveryWindow[t.ServerName]
		if !ok {
			return notes, fs
		}
		field := fmt.Sprintf("ObjectStore %s: status.serverRecoveryWindow[%s]", t.Store.Meta.Name, t.ServerName)
		var parts []string
		for _, p := range []struct{ name, v string }{{"first recoverability point", w.FirstRecoverabilityPoint}, {"last successful backup", w.LastSuccessfulBackupTime}, {"last failed backup", w.LastFailedBackupTime}} {
			if p.v != "" {
				parts = append(parts, p.name+" "+statusText(p.v))
			}
		}
		if len(parts) > 0 {
			notes = append(notes, fmt.Sprintf("the plugin reports for server %q: %s", t.ServerName, strings.Join(parts, ", ")))
		}
		failed, fok := parseTime(w.LastFailedBackupTime)
		ok2, sok := parseTime(w.LastSuccessfulBackupTime)
		if fok && (!sok || failed.After(ok2)) {
			fs = append(fs, providers.Warnf(field, "look at the failed Backup object's status.error and the plugin sidecar's logs",
				"the last backup failed (%s) and none succeeded since", statusText(w.LastFailedBackupTime)))
		}
	}
	return notes, fs
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	return t, err == nil
}
