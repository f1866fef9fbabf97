// Package text holds the string helpers shared by the packages that print.
package text

import (
	"strconv"
	"strings"
	"unicode"
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
