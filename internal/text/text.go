// Package text holds the string helpers shared by the packages that print.
package text

import (
	"strings"
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
