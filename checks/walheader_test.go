package checks

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand"
	"net/url"
	"os"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

// The fixtures in testdata/wal are real PostgreSQL 15 WAL: 000000010000000000000002 (a segment
// after pg_switch_wal, mostly zeros) compressed by gzip, bzip2, xz, zstd and lz4, and its first
// page; 000000010000000000000001.head is the first 64 KiB of a busy segment. Their cluster's
// system identifier (pg_controldata) is 7714714304834387594.
const fixtureSysID = 7714714304834387594

var noOpts providers.PutOptions

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/wal/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func memStore() *providertest.MemStore {
	u, _ := url.Parse("http://127.0.0.1:1")
	return providertest.NewMemStore(u)
}

func TestParseWALHeaderRealPage(t *testing.T) {
	h, err := ParseWALHeader(fixture(t, "000000010000000000000002.page"))
	if err != nil {
		t.Fatal(err)
	}
	if h.SystemID != fixtureSysID || h.Timeline != 1 || h.PageAddr != 0x2000000 || h.SegSize != 16<<20 || h.BlockSize != 8192 || h.Magic != 0xD110 {
		t.Errorf("header %+v", h)
	}
	for _, bad := range [][]byte{nil, make([]byte, 40), bytes.Repeat([]byte{0xFF}, 64), []byte("cnpg-preflight probe object, safe to delete; written")} {
		if _, err := ParseWALHeader(bad); err == nil {
			t.Errorf("ParseWALHeader(%q) accepted", bad)
		}
	}
	// a big-endian machine's WAL
	be := make([]byte, 40)
	be[0], be[1], be[2], be[3], be[7] = 0xD1, 0x10, 0, 2, 3
	be[24+7] = 9
	be[32], be[33], be[34], be[35] = 0x01, 0, 0, 0
	be[38] = 0x20
	if h, err := ParseWALHeader(be); err != nil || h.SystemID != 9 || h.Timeline != 3 {
		t.Errorf("big-endian: %+v %v", h, err)
	}
}

// Every compression barman-cloud writes yields the system identifier from a few KiB.
func TestReadWALHeaderCompressions(t *testing.T) {
	gz := fixture(t, "000000010000000000000002.gz")
	zr, _ := gzip.NewReader(bytes.NewReader(gz))
	seg, err := io.ReadAll(zr)
	if err != nil || len(seg) != 16<<20 {
		t.Fatalf("fixture: %d bytes, %v", len(seg), err)
	}
	var sn bytes.Buffer
	w := snappy.NewBufferedWriter(&sn)
	w.Write(seg)
	w.Close()
	objs := map[string][]byte{
		"": seg, ".gz": gz, ".bz2": fixture(t, "000000010000000000000002.bz2"), ".xz": fixture(t, "000000010000000000000002.xz"),
		".zst": fixture(t, "000000010000000000000002.zst"), ".lz4": fixture(t, "000000010000000000000002.lz4"), ".snappy": sn.Bytes(),
	}
	s := memStore()
	for ext, data := range objs {
		key := "p/pg/wals/0000000100000000/000000010000000000000002" + ext
		s.Put(context.Background(), key, data, noOpts)
		h, err := ReadWALHeader(context.Background(), s, key)
		if err != nil {
			t.Errorf("%q: %v", ext, err)
			continue
		}
		if h.SystemID != fixtureSysID || h.PageAddr != 0x2000000 {
			t.Errorf("%q: %+v", ext, h)
		}
		if h.BytesRead > 4<<10 {
			t.Errorf("%q: read %d bytes for a 40-byte header", ext, h.BytesRead)
		}
		t.Logf("%-7q object %8d bytes, read %5d", ext, len(data), h.BytesRead)
	}
}

// A busy segment (real WAL records, then bytes that do not compress) is still read with a bounded
// number of bytes; a truncated or corrupt object is an error, not a panic.
func TestReadWALHeaderBusySegment(t *testing.T) {
	head := fixture(t, "000000010000000000000001.head")
	seg := make([]byte, 2<<20) // the header says 16 MiB; the rest does not matter here
	copy(seg, head)
	rand.New(rand.NewSource(1)).Read(seg[len(head):])
	enc := map[string]func(io.Writer) io.WriteCloser{
		".gz":     func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		".snappy": func(w io.Writer) io.WriteCloser { return snappy.NewBufferedWriter(w) },
		".lz4": func(w io.Writer) io.WriteCloser {
			w2 := lz4.NewWriter(w)
			w2.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
			return w2
		},
		".zst": func(w io.Writer) io.WriteCloser {
			z, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
			return z
		},
		".xz": func(w io.Writer) io.WriteCloser { x, _ := xz.NewWriter(w); return x },
	}
	s := memStore()
	for ext, f := range enc {
		var b bytes.Buffer
		w := f(&b)
		w.Write(seg)
		w.Close()
		key := "p/pg/wals/0000000100000000/000000010000000000000001" + ext
		s.Put(context.Background(), key, b.Bytes(), noOpts)
		h, err := ReadWALHeader(context.Background(), s, key)
		if err != nil || h.SystemID != fixtureSysID || h.PageAddr != 0x1000000 {
			t.Errorf("%s: %+v %v", ext, h, err)
		}
		t.Logf("%-7s busy object %8d bytes, read %7d", ext, b.Len(), h.BytesRead)
		if h.BytesRead > 1400<<10 {
			t.Errorf("%s: read %d bytes", ext, h.BytesRead)
		}
		// cut after 100 bytes, and corrupt
		s.Put(context.Background(), key, b.Bytes()[:100], noOpts)
		if _, err := ReadWALHeader(context.Background(), s, key); err == nil {
			t.Errorf("%s: a truncated object read fine", ext)
		}
		bad := append([]byte(nil), b.Bytes()[:8192]...)
		for i := 4; i < len(bad); i += 7 {
			bad[i] ^= 0x5A
		}
		s.Put(context.Background(), key, bad, noOpts)
		if _, err := ReadWALHeader(context.Background(), s, key); err == nil {
			t.Errorf("%s: a corrupt object read fine", ext)
		}
	}
}
