package report

import "github.com/cnpg-preflight/cnpg-preflight/internal/text"

// Bounds on what one cell of the report may hold.
const (
	MaxMessage     = 4096 // a check's message
	MaxRemediation = 2048
	maxField       = 1024 // ids, paths, endpoints, leftovers
)

// sanitized returns a copy of m whose strings are safe to print (see text.Sanitize) and bounded.
func sanitized(m *Matrix) *Matrix {
	f := func(s string, max int) string { return text.Cap(text.Sanitize(s), max) }
	out := *m
	out.Interrupted = f(m.Interrupted, maxField)
	out.Targets = make([]*Target, len(m.Targets))
	for i, t := range m.Targets {
		c := *t
		c.ID, c.Role, c.Provider = f(t.ID, maxField), f(t.Role, maxField), f(t.Provider, maxField)
		c.Cluster = ClusterRef{Namespace: f(t.Cluster.Namespace, maxField), Name: f(t.Cluster.Name, maxField)}
		c.DestinationPath, c.ServerName, c.Endpoint = f(t.DestinationPath, maxField), f(t.ServerName, maxField), f(t.Endpoint, maxField)
		c.Checks = make([]Check, len(t.Checks))
		for j, ch := range t.Checks {
			ch.ID, ch.Message, ch.Remediation = f(ch.ID, maxField), f(ch.Message, MaxMessage), f(ch.Remediation, MaxRemediation)
			c.Checks[j] = ch
		}
		if w := t.RecoveryWindow; w != nil {
			cw := *w
			point := func(p *RestorePoint) *RestorePoint {
				if p == nil {
					return nil
				}
				q := *p
				q.Time, q.LSN, q.Backup, q.WAL = f(p.Time, maxField), f(p.LSN, maxField), f(p.Backup, maxField), f(p.WAL, maxField)
				return &q
			}
			cw.Earliest, cw.Latest = point(w.Earliest), point(w.Latest)
			if w.FirstHole != nil {
				h := *w.FirstHole
				h.From, h.To = f(h.From, maxField), f(h.To, maxField)
				cw.FirstHole = &h
			}
			cw.Timelines = append([]int(nil), w.Timelines...)
			c.RecoveryWindow = &cw
		}
		c.Leftovers = nil
		for _, k := range t.Leftovers {
			c.Leftovers = append(c.Leftovers, f(k, maxField))
		}
		out.Targets[i] = &c
	}
	return &out
}
