package checks

import (
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
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

// FuzzWALHeader: whatever an archive holds under a WAL name — any compression suffix, any bytes —
// reading its header and parsing a history file end in a value or an error, never a panic, and
// read at most the bounded ranges.
func FuzzWALHeader(f *testing.F) {
	f.Add(".gz", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	f.Add(".bz2", []byte("BZh91AY&SY"))
	f.Add(".zst", []byte("\x28\xb5\x2f\xfd"))
	f.Add(".xz", []byte("\xfd7zXZ\x00"))
	f.Add(".lz4", []byte("\x04\x22\x4d\x18"))
	f.Add(".snappy", []byte("\xff\x06\x00\x00sNaPpY"))
	f.Add("", []byte("1\t0/5000100\tno recovery target specified\n"))
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		if !compressionSuffixes[ext] {
			ext = ""
		}
		s := memStore()
		key := "p/pg/wals/0000000100000000/000000010000000000000001" + ext
		s.Put(t.Context(), key, data, providers.PutOptions{})
		h, err := ReadWALHeader(t.Context(), s, key)
		if h.BytesRead > int64(len(data)) || h.BytesRead > 4<<10+160<<10+1<<20+256<<10 {
			t.Fatalf("read %d bytes of %d", h.BytesRead, len(data))
		}
		_ = err
		ParseHistory(2, data)
	})
}
