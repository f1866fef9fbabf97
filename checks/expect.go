package checks

import (
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// Mismatches compares a target's checks with spec, "id=status ..." where "*=status" stands for
// every column of the registry not named; without "*", columns not named are not compared. It
// returns one line per difference (none when the target matches). Tests use it so that a new
// check does not mean rewriting full-matrix strings.
func Mismatches(tg *report.Target, spec string) []string {
	if tg == nil {
		return []string{"no such target"}
	}
	want := map[string]string{}
	for _, f := range strings.Fields(spec) {
		k, v, _ := strings.Cut(f, "=")
		want[k] = v
	}
	var out []string
	for id := range want {
		if id != "*" && !isColumn(id) {
			out = append(out, fmt.Sprintf("%q is not a check of the registry", id))
		}
	}
	for _, id := range Columns() {
		w, ok := want[id]
		if !ok {
			w, ok = want["*"]
		}
		c := tg.Check(id)
		switch {
		case c == nil:
			out = append(out, fmt.Sprintf("%s: no %s check", tg.ID, id))
		case ok && string(c.Status) != w:
			out = append(out, fmt.Sprintf("%s %s = %s, want %s (%s)", tg.ID, id, c.Status, w, c.Message))
		}
	}
	return out
}

func isColumn(id string) bool {
	for _, c := range Columns() {
		if c == id {
			return true
		}
	}
	return false
}
