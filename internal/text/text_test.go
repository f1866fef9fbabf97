package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"two\nlines\r\n✓ db/pg backup list: forged", "two lines ✓ db/pg backup list: forged"},
		{"red \x1b[31mALERT\x1b[0m done", "red ALERT done"},
		{"title \x1b]0;pwned\x07 after", "title after"},
		{"link \x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\ end", "link click end"},
		{"c1 csi \u009b31mred", "c1 csi red"},
		{"nul\x00bell\x07del\x7f", "nulbelldel"},
		{"bidi \u202eevil\u202c zero\u200bwidth", "bidi evil zerowidth"},
		{"bad utf8 \xff end", "bad utf8 \ufffd end"},
		{"  leading and trailing  ", "leading and trailing"},
		{"tab\there", "tab here"},
		{"é ü 中文 ✓", "é ü 中文 ✓"},
	} {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("a\x1b[31mb\nc\u009bd\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q", s)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("control %U left in %q (from %q)", r, out, s)
			}
		}
		if strings.Contains(out, "  ") {
			t.Fatalf("double space in %q", out)
		}
	})
}

func TestCap(t *testing.T) {
	s := strings.Repeat("é", 100)
	for max := 4; max < 220; max++ {
		got := Cap(s, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Fatalf("Cap(%d) = %d bytes", max, len(got))
		}
	}
	if Cap("short", 10) != "short" {
		t.Fatal("Cap changed a short string")
	}
}
