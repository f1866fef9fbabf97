package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() *Matrix {
	m := &Matrix{SchemaVersion: SchemaVersion, Targets: []*Target{
		{ID: "db/pg/backup", Cluster: ClusterRef{"db", "pg"}, Role: "backup", Provider: "s3", DestinationPath: "s3://b/p", ServerName: "pg", Endpoint: "http://127.0.0.1:9000",
			Checks: []Check{
				{ID: "config", Status: Warn, Message: "in-tree barmanObjectStore is deprecated", Remediation: "use the plugin", DurationMs: 0},
				{ID: "bucket", Status: Pass, Message: `"b" is reachable`, DurationMs: 3},
				{ID: "write", Status: Fail, Message: "PutObject: 403 Forbidden (AccessDenied: <denied> | x)", Remediation: "grant s3:PutObject on arn:aws:s3:::b/p/pg/*", DurationMs: 12},
				{ID: "read", Status: Skip, Message: "skipped: write did not pass"},
			},
			Leftovers: []string{"p/pg/cnpg-preflight-probe-1"}},
		{ID: "db/pg/recovery-source/old", Cluster: ClusterRef{"db", "pg"}, Role: "recovery-source", Provider: "s3", DestinationPath: "s3://b/old", ServerName: "old",
			Checks: []Check{{ID: "config", Status: Pass, Message: "ok"}, {ID: "bucket", Status: Pass, Message: "ok"}, {ID: "write", Status: Skip, Message: "read-only"}, {ID: "read", Status: Pass, Message: "ok"}},
			RecoveryWindow: &Window{
				Earliest:  &RestorePoint{Time: "2026-11-20T00:10:00Z", LSN: "0/6000100", Timeline: 1, Backup: "20261120T000000"},
				Latest:    &RestorePoint{Time: "2026-11-29T23:58:00Z", LSN: "0/D000000", Timeline: 2, WAL: "00000002000000000000000C"},
				Timelines: []int{1, 2}, Segments: 7,
				FirstHole: &Hole{From: "000000010000000000000003", To: "000000010000000000000004", Missing: 2}}},
	}}
	m.Summarize()
	return m
}

func TestGolden(t *testing.T) {
	for _, f := range Formats {
		for _, color := range []bool{false, true} {
			if color && f != "table" {
				continue
			}
			name := f
			if color {
				name += "-color"
			}
			t.Run(name, func(t *testing.T) {
				var b bytes.Buffer
				if err := Render(&b, sample(), f, Options{Color: color}); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", name+".golden")
				if *update {
					os.WriteFile(path, b.Bytes(), 0o644)
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Errorf("%s differs from %s (go test ./report -update to accept):\n%s", name, path, b.String())
				}
			})
		}
	}
}

func TestSummaryAndFailed(t *testing.T) {
	m := sample()
	if s := m.Summary; s.Targets != 2 || s.Pass != 4 || s.Fail != 2 || s.Warn != 1 || s.Skip != 2 {
		t.Errorf("summary %+v", s)
	}
	if !m.Failed() {
		t.Error("Failed() = false")
	}
	m.Targets = m.Targets[1:]
	if m.Failed() {
		t.Error("Failed() = true without failures")
	}
}

// Brief never cuts a multi-byte character in half.
func TestBriefCutsOnRuneBoundary(t *testing.T) {
	m := &Matrix{Targets: []*Target{{ID: "db/pg/backup", Checks: []Check{{ID: "config", Status: Fail, Message: strings.Repeat("é", 100)}}}}}
	m.Summarize()
	for max := 60; max < 200; max++ {
		b := Brief(m, max)
		if len(b) > max || !utf8.ValidString(b) {
			t.Fatalf("Brief(%d) = %d bytes, valid UTF-8 %v", max, len(b), utf8.ValidString(b))
		}
	}
}

// Server text is data: it cannot forge lines of the table, reach the terminal as escapes, make
// live Markdown (links, images, HTML) or invalid XML.
func TestHostileTextIsInert(t *testing.T) {
	evil := "AccessDenied\n✓ db/pg backup list: all fine\x1b]0;owned\x07 \x1b[31mred\u009b2J ![x](http://evil.example/beacon.png) [y](http://evil.example) <img src=x> \x00\x01"
	m := &Matrix{SchemaVersion: SchemaVersion, Targets: []*Target{{ID: "db/pg/backup", Cluster: ClusterRef{"db", "pg"}, Role: "backup", DestinationPath: "s3://b/p\n✗ forged",
		Checks: []Check{{ID: "write", Status: Fail, Message: evil, Remediation: evil}}, Leftovers: []string{"p/pg/probe\nforged"},
		RecoveryWindow: &Window{Earliest: &RestorePoint{LSN: "0/1", Backup: evil}, Latest: &RestorePoint{LSN: "0/2", WAL: evil}}}}, Interrupted: "x\x1b[2Jy"}
	m.Summarize()
	for _, f := range Formats {
		var b bytes.Buffer
		if err := Render(&b, m, f, Options{Color: true}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, bad := range []string{"\x1b]", "\x1b[2J", "\u009b", "\x00", "\x01", "\x07"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: output holds %q", f, bad)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "✓ db/pg backup list") || strings.HasPrefix(line, "✗ forged") || strings.HasPrefix(line, "forged") {
				t.Errorf("%s: a forged line: %q", f, line)
			}
		}
		switch f {
		case "markdown":
			for _, live := range []string{"![x](", "[y](", "<img"} {
				if strings.Contains(out, live) {
					t.Errorf("markdown keeps %q live:\n%s", live, out)
				}
			}
		case "junit":
			if err := xml.Unmarshal(b.Bytes(), new(junitSuites)); err != nil {
				t.Errorf("junit is not valid XML: %v", err)
			}
		}
	}
}
