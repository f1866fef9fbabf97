package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// Options tune rendering.
type Options struct {
	Color bool // ANSI colours in the table (only on a TTY, never with NO_COLOR)
}

// renderers are the output formats, in the order they are listed: adding a format is one entry
// here and its function.
var renderers = []struct {
	name   string
	render func(io.Writer, *Matrix, Options) error
}{
	{"table", Table},
	{"json", func(w io.Writer, m *Matrix, _ Options) error { return JSON(w, m) }},
	{"junit", func(w io.Writer, m *Matrix, _ Options) error { return JUnit(w, m) }},
	{"markdown", func(w io.Writer, m *Matrix, _ Options) error { return Markdown(w, m) }},
}

// Formats accepted by Render.
var Formats = func() []string {
	var out []string
	for _, r := range renderers {
		out = append(out, r.name)
	}
	return out
}()

// Render writes m in format. Every string of the matrix is sanitized first (it may come from a
// server or a manifest): no control character or escape sequence reaches the output, and no
// message is longer than MaxMessage bytes.
func Render(w io.Writer, m *Matrix, format string, o Options) error {
	for _, r := range renderers {
		if r.name == format {
			return r.render(w, sanitized(m), o)
		}
	}
	return fmt.Errorf("unknown output format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// JSON writes the schemaVersion 1 document.
func JSON(w io.Writer, m *Matrix) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

var symbols = map[Status]string{Pass: "✓", Fail: "✗", Warn: "!", Skip: "–"}
var colors = map[Status]string{Pass: "\033[32m", Fail: "\033[31m", Warn: "\033[33m", Skip: "\033[90m"}

const reset = "\033[0m"

// rowLabel is "namespace/cluster role", followed by what tells targets of one role apart (the
// external cluster's name, /plugin, #2), as the target's ID has it.
func rowLabel(t *Target) string {
	c := t.Cluster.Namespace + "/" + t.Cluster.Name
	if rest, ok := strings.CutPrefix(t.ID, c+"/"); ok && strings.HasPrefix(rest, t.Role) {
		return c + " " + rest
	}
	return c + " " + t.Role
}

func pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// Table writes the terminal matrix and, under it, every fail and warn with its remediation.
func Table(w io.Writer, m *Matrix, o Options) error {
	cols := m.Columns()
	labelW, destW := len("TARGET"), len("DESTINATION")
	for _, t := range m.Targets {
		labelW = max(labelW, utf8.RuneCountInString(rowLabel(t)))
		destW = max(destW, utf8.RuneCountInString(dest(t)))
	}
	var b strings.Builder
	b.WriteString(pad("TARGET", labelW) + "  " + pad("DESTINATION", destW))
	for _, c := range cols {
		b.WriteString("  " + c)
	}
	b.WriteString("\n")
	for _, t := range m.Targets {
		var row strings.Builder
		row.WriteString(pad(rowLabel(t), labelW) + "  " + pad(dest(t), destW))
		for _, id := range cols {
			cell := " "
			if c := t.Check(id); c != nil {
				cell = symbols[c.Status]
				if o.Color {
					cell = colors[c.Status] + cell + reset
				}
			}
			row.WriteString("  " + cell + strings.Repeat(" ", max(0, len(id)-1)))
		}
		b.WriteString(strings.TrimRight(row.String(), " ") + "\n")
	}
	details := false
	for _, t := range m.Targets {
		for _, c := range t.Checks {
			if c.Status != Fail && c.Status != Warn {
				continue
			}
			if !details {
				b.WriteString("\n")
				details = true
			}
			sym := symbols[c.Status]
			if o.Color {
				sym = colors[c.Status] + sym + reset
			}
			fmt.Fprintf(&b, "%s %s %s: %s\n", sym, rowLabel(t), c.ID, c.Message)
			if c.Remediation != "" {
				fmt.Fprintf(&b, "    fix: %s\n", c.Remediation)
			}
		}
		for _, k := range t.Leftovers {
			fmt.Fprintf(&b, "✗ %s: probe object left behind, delete it by hand: %s\n", rowLabel(t), k)
		}
	}
	windows := false
	for _, t := range m.Targets {
		if t.RecoveryWindow == nil {
			continue
		}
		if !windows {
			b.WriteString("\n")
			windows = true
		}
		fmt.Fprintf(&b, "%s: %s\n", rowLabel(t), t.RecoveryWindow)
	}
	if m.Interrupted != "" {
		fmt.Fprintf(&b, "\ninterrupted: %s; the matrix is partial\n", m.Interrupted)
	}
	s := m.Summary
	fmt.Fprintf(&b, "\n%d target(s): %d passed, %d failed, %d warnings, %d skipped\n", s.Targets, s.Pass, s.Fail, s.Warn, s.Skip)
	_, err := io.WriteString(w, b.String())
	return err
}

func dest(t *Target) string {
	d := t.DestinationPath
	if t.ServerName != "" {
		d = strings.TrimSuffix(d, "/") + " (" + t.ServerName + ")"
	}
	return d
}

// Markdown writes the matrix and details for a CI job summary.
func Markdown(w io.Writer, m *Matrix) error {
	cols := m.Columns()
	var b strings.Builder
	b.WriteString("## cnpg-preflight\n\n| target | destination |")
	for _, c := range cols {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(cols)) + "\n")
	md := map[Status]string{Pass: "✅", Fail: "❌", Warn: "⚠️", Skip: "⏭️"}
	for _, t := range m.Targets {
		fmt.Fprintf(&b, "| %s | `%s` |", mdEscape(rowLabel(t)), strings.NewReplacer("`", "'", "|", "\\|").Replace(dest(t)))
		for _, id := range cols {
			if c := t.Check(id); c != nil {
				b.WriteString(" " + md[c.Status] + " |")
			} else {
				b.WriteString("  |")
			}
		}
		b.WriteString("\n")
	}
	s := m.Summary
	fmt.Fprintf(&b, "\n**%d target(s): %d passed, %d failed, %d warnings, %d skipped**\n", s.Targets, s.Pass, s.Fail, s.Warn, s.Skip)
	first := true
	for _, t := range m.Targets {
		for _, c := range t.Checks {
			if c.Status != Fail && c.Status != Warn {
				continue
			}
			if first {
				b.WriteString("\n### Findings\n\n")
				first = false
			}
			fmt.Fprintf(&b, "- %s **%s** `%s`: %s", md[c.Status], mdEscape(rowLabel(t)), c.ID, mdEscape(c.Message))
			if c.Remediation != "" {
				fmt.Fprintf(&b, "<br>fix: %s", mdEscape(c.Remediation))
			}
			b.WriteString("\n")
		}
		for _, k := range t.Leftovers {
			fmt.Fprintf(&b, "- ❌ **%s**: probe object left behind: `%s`\n", mdEscape(rowLabel(t)), strings.ReplaceAll(k, "`", "'"))
		}
	}
	first = true
	for _, t := range m.Targets {
		if t.RecoveryWindow == nil {
			continue
		}
		if first {
			b.WriteString("\n### Recovery windows\n\n")
			first = false
		}
		fmt.Fprintf(&b, "- **%s**: %s\n", mdEscape(rowLabel(t)), mdEscape(t.RecoveryWindow.String()))
	}
	if m.Interrupted != "" {
		fmt.Fprintf(&b, "\n> interrupted: %s; the matrix is partial\n", mdEscape(m.Interrupted))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape makes text inert in Markdown (GitHub's included): no link, image, HTML, emphasis or
// table cell can be made by a server's message.
var mdEscaper = strings.NewReplacer("\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "!", "\\!",
	"~", "\\~", "|", "\\|", "&", "&amp;", "<", "&lt;", ">", "&gt;", "\n", " ")

func mdEscape(s string) string { return mdEscaper.Replace(s) }

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Props    []junitProp `xml:"properties>property,omitempty"`
	Cases    []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// JUnit writes one testsuite per target and one testcase per check.
func JUnit(w io.Writer, m *Matrix) error {
	out := junitSuites{Name: "cnpg-preflight"}
	for _, t := range m.Targets {
		s := junitSuite{Name: t.ID, Props: []junitProp{{"destinationPath", t.DestinationPath}, {"serverName", t.ServerName}, {"provider", t.Provider}, {"endpoint", t.Endpoint}}}
		if t.RecoveryWindow != nil {
			s.Props = append(s.Props, junitProp{"recoveryWindow", t.RecoveryWindow.String()})
		}
		var total int64
		for _, c := range t.Checks {
			total += c.DurationMs
			tc := junitCase{Name: c.ID, ClassName: t.ID, Time: secs(c.DurationMs)}
			switch c.Status {
			case Fail:
				text := c.Message
				if c.Remediation != "" {
					text += "\nfix: " + c.Remediation
				}
				tc.Failure = &junitFailure{Message: c.Message, Type: "fail", Text: text}
				s.Failures++
			case Skip:
				tc.Skipped = &junitSkipped{Message: c.Message}
				s.Skipped++
			case Warn:
				tc.SystemOut = "warning: " + c.Message
				if c.Remediation != "" {
					tc.SystemOut += "\nfix: " + c.Remediation
				}
			default:
				tc.SystemOut = c.Message
			}
			s.Cases = append(s.Cases, tc)
		}
		for _, k := range t.Leftovers {
			s.Cases = append(s.Cases, junitCase{Name: "cleanup", ClassName: t.ID, Time: "0", Failure: &junitFailure{Message: "probe object left behind: " + k, Type: "leftover", Text: k}})
			s.Failures++
		}
		s.Tests = len(s.Cases)
		s.Time = secs(total)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

// Brief is a short plain-text verdict of at most max bytes (for a Pod's termination message).
func Brief(m *Matrix, max int) string {
	var b strings.Builder
	verdict := "PASS"
	if m.Failed() {
		verdict = "FAIL"
	}
	s := m.Summary
	fmt.Fprintf(&b, "cnpg-preflight %s: %d target(s), %d passed, %d failed, %d warnings, %d skipped\n", verdict, s.Targets, s.Pass, s.Fail, s.Warn, s.Skip)
	for _, t := range m.Targets {
		for _, c := range t.Checks {
			if c.Status == Fail {
				fmt.Fprintf(&b, "%s %s: %s\n", t.ID, c.ID, c.Message)
			}
		}
		for _, k := range t.Leftovers {
			fmt.Fprintf(&b, "%s: probe object left behind: %s\n", t.ID, k)
		}
	}
	return text.Truncate(b.String(), max, "...\n")
}
