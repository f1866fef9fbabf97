// Package report holds the Matrix (targets × checks) and renders it as a terminal table, JSON,
// JUnit XML or Markdown. The JSON form is a public contract: see SchemaVersion and the README.
package report

import "fmt"

// SchemaVersion is the version of the JSON output schema.
const SchemaVersion = 1

// Status of one check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Matrix is the result of a run.
type Matrix struct {
	SchemaVersion int       `json:"schemaVersion"`
	Targets       []*Target `json:"targets"`
	Summary       Summary   `json:"summary"`
	Interrupted   string    `json:"interrupted,omitempty"` // set when a signal stopped the run
}

// ClusterRef names a Cluster.
type ClusterRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Target is one row of the matrix.
type Target struct {
	ID              string     `json:"id"`
	Cluster         ClusterRef `json:"cluster"`
	Role            string     `json:"role"`
	Provider        string     `json:"provider"`
	DestinationPath string     `json:"destinationPath"`
	ServerName      string     `json:"serverName"`
	Endpoint        string     `json:"endpoint"`
	Checks          []Check    `json:"checks"`
	Leftovers       []string   `json:"leftovers,omitempty"` // probe objects that could not be deleted
	Requests        int64      `json:"requests"`            // HTTP requests made to the object store
	// RecoveryWindow is what a source's archive can restore (wal-archive), omitted otherwise.
	RecoveryWindow *Window `json:"recoveryWindow,omitempty"`
}

// Window is a source's recoverable window: from the end of a completed backup (the earliest
// consistent point) through the newest WAL segment reachable from it without a hole.
type Window struct {
	Earliest  *RestorePoint `json:"earliest,omitempty"` // omitted when no completed backup starts the window (WAL only)
	Latest    *RestorePoint `json:"latest,omitempty"`
	Timelines []int         `json:"timelines"` // the timelines it crosses, in order
	Segments  int           `json:"segments"`  // WAL segments it needs, all present
	// FirstHole is the first run of missing segments after the window's oldest possible start
	// (omitted when there is none); the window then starts after it, or ends before it.
	FirstHole *Hole `json:"firstHole,omitempty"`
}

// RestorePoint is one end of a window.
type RestorePoint struct {
	Time     string `json:"time,omitempty"` // RFC 3339, UTC: a backup's end, or when the newest segment was archived
	LSN      string `json:"lsn"`
	Timeline int    `json:"timeline"`
	Backup   string `json:"backup,omitempty"` // the backup the window starts from
	WAL      string `json:"wal,omitempty"`    // the newest segment of the window
}

// Hole is a run of missing WAL segments.
type Hole struct {
	From    string `json:"from"` // first missing segment
	To      string `json:"to"`   // last missing segment
	Missing int64  `json:"missing"`
}

// String is the window in one line, for the table, Markdown and JUnit.
func (w *Window) String() string {
	if w == nil {
		return ""
	}
	point := func(p *RestorePoint) string {
		if p == nil {
			return "?"
		}
		s := p.LSN + fmt.Sprintf(" (timeline %d", p.Timeline)
		if p.Time != "" {
			s += ", " + p.Time
		}
		if p.Backup != "" {
			s += ", end of backup " + p.Backup
		}
		if p.WAL != "" {
			s += ", " + p.WAL
		}
		return s + ")"
	}
	s := "recovery window " + point(w.Earliest) + " → " + point(w.Latest)
	switch {
	case w.Earliest != nil && w.Latest == nil:
		s = "no recovery window: backup " + w.Earliest.Backup + " ends past the archived WAL"
	case w.Earliest == nil:
		s = "WAL " + point(w.Latest) + " (no completed backup starts a window)"
	}
	s += fmt.Sprintf(", %d segment(s)", w.Segments)
	if w.FirstHole != nil {
		s += fmt.Sprintf("; first hole %s–%s (%d missing)", w.FirstHole.From, w.FirstHole.To, w.FirstHole.Missing)
	}
	return s
}

// Check is one cell of the matrix.
type Check struct {
	ID          string `json:"id"`
	Status      Status `json:"status"`
	Message     string `json:"message"`
	Remediation string `json:"remediation,omitempty"`
	DurationMs  int64  `json:"durationMs"`
}

// Summary counts checks by status over all targets.
type Summary struct {
	Targets int `json:"targets"`
	Pass    int `json:"pass"`
	Fail    int `json:"fail"`
	Warn    int `json:"warn"`
	Skip    int `json:"skip"`
}

// Summarize fills m.Summary from the targets.
func (m *Matrix) Summarize() {
	s := Summary{Targets: len(m.Targets)}
	for _, t := range m.Targets {
		for _, c := range t.Checks {
			switch c.Status {
			case Pass:
				s.Pass++
			case Fail:
				s.Fail++
			case Warn:
				s.Warn++
			case Skip:
				s.Skip++
			}
		}
		if len(t.Leftovers) > 0 {
			s.Fail++
		}
	}
	m.Summary = s
}

// Failed reports whether any check failed, a probe object was left behind, or the run was
// interrupted (its verdict is incomplete).
func (m *Matrix) Failed() bool {
	if m.Interrupted != "" {
		return true
	}
	for _, t := range m.Targets {
		if t.Failed() {
			return true
		}
	}
	return false
}

// Failed reports whether a check of t failed or a probe object was left behind.
func (t *Target) Failed() bool {
	if len(t.Leftovers) > 0 {
		return true
	}
	for _, c := range t.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Columns returns the check IDs in the order they first appear.
func (m *Matrix) Columns() []string {
	var cols []string
	seen := map[string]bool{}
	for _, t := range m.Targets {
		for _, c := range t.Checks {
			if !seen[c.ID] {
				seen[c.ID] = true
				cols = append(cols, c.ID)
			}
		}
	}
	return cols
}

// Check returns the check id of t, or nil.
func (t *Target) Check(id string) *Check {
	for i := range t.Checks {
		if t.Checks[i].ID == id {
			return &t.Checks[i]
		}
	}
	return nil
}
