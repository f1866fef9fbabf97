// Package text holds the string helpers shared by the packages that print: everything that came
// from outside (a server, a manifest) goes through Sanitize before it reaches a terminal or a file.
package text

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OneLine collapses every run of white space (newlines included) into one space.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Join lists words as "a, b conj c" (conj is "and" or "or").
func Join(words []string, conj string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// Sanitize makes text from outside safe to print on one line: terminal escape sequences (CSI,
// OSC, …) are removed with their parameters, C0 and C1 control characters and Unicode bidi and
// invisible format characters are dropped, invalid UTF-8 becomes U+FFFD, and every run of white
// space (newlines included) becomes one space, so no server can forge lines of a report.
func Sanitize(s string) string {
	if isPlain(s) && !strings.Contains(s, "  ") && strings.TrimSpace(s) == s {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	emit := func(r rune) {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			return
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			emit(utf8.RuneError)
		case r == 0x1b || r == 0x9b || r == 0x9d: // ESC, CSI, OSC (C1 forms too)
			n = escapeLen(s[i:])
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f':
			space = b.Len() > 0
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0): // C0, DEL, C1
		case unicode.Is(unicode.Cf, r): // bidi overrides, zero-width and other format characters
		default:
			emit(r)
		}
		i += n
	}
	return b.String()
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// escapeLen is the length of the terminal escape sequence at the start of s (at least its first
// character): ESC [ … final, ESC ] … BEL or ST, ESC P/X/^/_ … ST, ESC + one character, and the C1
// forms CSI (U+009B) and OSC (U+009D).
func escapeLen(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	kind := r
	if r == 0x1b {
		if len(s) < 2 {
			return 1
		}
		kind, n = rune(s[1]), 2
		switch kind {
		case '[':
			kind = 0x9b
		case ']', 'P', 'X', '^', '_':
			kind = 0x9d
		default:
			return n // a two-character escape
		}
	}
	rest := s[n:]
	if kind == 0x9b { // CSI: parameters and intermediates, then one final byte 0x40–0x7e
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c >= 0x40 && c <= 0x7e {
				return n + i + 1
			} else if c < 0x20 || c > 0x3f && c < 0x40 || c >= 0x7f {
				return n + i
			}
		}
		return len(s)
	}
	// OSC and string sequences: up to BEL, ESC \ or ST (U+009C)
	for i := 0; i < len(rest); i++ {
		switch {
		case rest[i] == 0x07:
			return n + i + 1
		case rest[i] == 0x1b && i+1 < len(rest) && rest[i+1] == '\\':
			return n + i + 2
		case strings.HasPrefix(rest[i:], "\u009c"):
			return n + i + len("\u009c")
		}
	}
	return len(s)
}

// Cap shortens s to at most max bytes (on a character boundary), ending it with "…" when cut.
func Cap(s string, max int) string { return Truncate(s, max, "…") }

// Safe returns s as is when it is plain printable text (no spaces), else quoted with Go escapes:
// for names read from outside that are printed inside a sentence.
func Safe(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == ' ' {
			return strconv.Quote(s)
		}
	}
	return s
}

// Truncate cuts s to at most max bytes, never inside a multi-byte character, ending it with
// ellipsis when it had to cut.
func Truncate(s string, max int, ellipsis string) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut < 0 {
		cut = 0
	}
	return s[:cut] + ellipsis
}
