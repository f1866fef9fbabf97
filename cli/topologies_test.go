package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/checks"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// verdict is an expected verdict read from a verdict.want file: "exit N", then one line per
// target, "ID: spec" (checks.Mismatches' "check=status … *=status"), and "ID CHECK ~ text" lines
// asking that the check's message contains text. # starts a comment. Every target of the run must
// be listed, and every listed target must exist.
type verdict struct {
	Exit     int
	Specs    map[string]string
	Contains [][3]string // target, check, text
}

// parseVerdict reads a verdict.want.
func parseVerdict(data string) (verdict, error) {
	v := verdict{Exit: -1, Specs: map[string]string{}}
	for _, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "exit "):
			n, err := strconv.Atoi(strings.TrimPrefix(l, "exit "))
			if err != nil {
				return v, fmt.Errorf("%q: %v", l, err)
			}
			v.Exit = n
		case strings.Contains(l, " ~ "):
			head, text, _ := strings.Cut(l, " ~ ")
			id, check, _ := strings.Cut(head, " ")
			v.Contains = append(v.Contains, [3]string{id, check, text})
		default:
			id, spec, ok := strings.Cut(l, ": ")
			if !ok {
				return v, fmt.Errorf("%q: want \"exit N\", \"ID: spec\" or \"ID CHECK ~ text\"", l)
			}
			v.Specs[id] = spec
		}
	}
	return v, nil
}

// Check compares a matrix and exit code with the verdict; it returns one line per difference.
func (v verdict) Check(m *report.Matrix, code int) []string {
	var out []string
	if code != v.Exit {
		out = append(out, fmt.Sprintf("exit %d, want %d", code, v.Exit))
	}
	byID := map[string]*report.Target{}
	for _, t := range m.Targets {
		byID[t.ID] = t
		if _, ok := v.Specs[t.ID]; !ok {
			out = append(out, "unexpected target "+t.ID+" ("+t.Role+")")
		}
	}
	ids := make([]string, 0, len(v.Specs))
	for id := range v.Specs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = append(out, checks.Mismatches(byID[id], v.Specs[id])...)
	}
	for _, c := range v.Contains {
		tg := byID[c[0]]
		if tg == nil || tg.Check(c[1]) == nil {
			out = append(out, "no check "+c[1]+" of "+c[0])
		} else if !strings.Contains(tg.Check(c[1]).Message, c[2]) {
			out = append(out, c[0]+" "+c[1]+": "+tg.Check(c[1]).Message+"\n  does not contain: "+c[2])
		}
	}
	return out
}

// TestTopologies runs the corpus of CloudNativePG's documented topologies (testdata/topologies,
// one directory per region or variant, each with its verdict.want) offline. The integration suite
// probes the distributed topology against real archives.
func TestTopologies(t *testing.T) {
	var dirs []string
	filepath.WalkDir("../testdata/topologies", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "verdict.want" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return err
	})
	if len(dirs) < 20 {
		t.Fatalf("corpus: %d directories", len(dirs))
	}
	for _, dir := range dirs {
		name, _ := filepath.Rel("../testdata/topologies", dir)
		t.Run(name, func(t *testing.T) {
			want, _ := os.ReadFile(filepath.Join(dir, "verdict.want"))
			v, err := parseVerdict(string(want))
			if err != nil || v.Exit < 0 || len(v.Specs) == 0 {
				t.Fatalf("verdict.want: %v %+v", err, v)
			}
			code, stdout, stderr := runCLI(t, "check", "--offline", "-o", "json", "-f", dir)
			var m report.Matrix
			if err := json.Unmarshal([]byte(stdout), &m); err != nil {
				t.Fatalf("exit %d, no JSON: %v\n%s", code, err, stderr)
			}
			for _, d := range v.Check(&m, code) {
				t.Error(d)
			}
			for _, tg := range m.Targets { // CNPG's own setups: no false failure, no claim that CNPG rejects them
				for _, c := range tg.Checks {
					if strings.Contains(c.Message, "CNPG rejects") || strings.Contains(c.Message, "rejects this") {
						t.Errorf("%s %s claims a rejection: %s", tg.ID, c.ID, c.Message)
					}
				}
			}
			if t.Failed() {
				_, table, _ := runCLI(t, "check", "--offline", "--no-color", "-f", dir)
				t.Log("\n" + table)
			}
		})
	}
}
