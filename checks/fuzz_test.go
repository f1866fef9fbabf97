package checks

import (
	"strings"
	"testing"
)

// FuzzWALName: the WAL rule never panics, is idempotent on its result, and only accepts names of
// barman's shapes.
func FuzzWALName(f *testing.F) {
	for _, s := range []string{"p/wals/0000000100000000/000000010000000000000001.gz", "wals/00000002.history", "000000010000000000000002.00000028.backup.zst", "x.partial", "0000000100000000000000010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name, ok := WALName(key)
		if !ok {
			return
		}
		if again, ok2 := WALName(name); !ok2 || again != name {
			t.Fatalf("WALName(%q) = %q, but WALName(%q) = %q, %v", key, name, name, again, ok2)
		}
		if len(name) != 24 && !strings.HasSuffix(name, ".history") && !strings.HasSuffix(name, ".partial") && !strings.HasSuffix(name, ".backup") {
			t.Fatalf("odd WAL name %q from %q", name, key)
		}
	})
}
