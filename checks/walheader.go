package checks

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// WALHeader is what the long page header at the start of every WAL segment says
// (XLogLongPageHeaderData, PostgreSQL's access/xlog_internal.h).
type WALHeader struct {
	Magic      uint16 // XLOG_PAGE_MAGIC: one value per PostgreSQL major version
	Timeline   uint32 // xlp_tli
	PageAddr   uint64 // xlp_pageaddr: the LSN the segment starts at
	SystemID   uint64 // xlp_sysid: the cluster's system identifier (pg_controldata)
	SegSize    uint32 // xlp_seg_size
	BlockSize  uint32 // xlp_xlog_blcksz
	BytesRead  int64  // bytes fetched from the store to read it (over every attempt)
	Compressed string // the compression suffix of the object ("" when none)
}

// longHeaderSize is sizeof(XLogLongPageHeaderData) on every platform PostgreSQL supports: the
// short header (2+2+4+8+4, padded to 24) then sysid (8), seg_size (4) and xlog_blcksz (4).
const longHeaderSize = 40

// xlpLongHeader is XLP_LONG_HEADER in xlp_info.
const xlpLongHeader = 0x0002

// ParseWALHeader reads the long page header of a WAL segment's first page. PostgreSQL writes it
// in the machine's byte order: little-endian is tried first, then big-endian.
func ParseWALHeader(b []byte) (WALHeader, error) {
	if len(b) < longHeaderSize {
		return WALHeader{}, fmt.Errorf("%d bytes, shorter than a WAL page header (%d)", len(b), longHeaderSize)
	}
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		h := WALHeader{
			Magic:     o.Uint16(b[0:2]),
			Timeline:  o.Uint32(b[4:8]),
			PageAddr:  o.Uint64(b[8:16]),
			SystemID:  o.Uint64(b[24:32]),
			SegSize:   o.Uint32(b[32:36]),
			BlockSize: o.Uint32(b[36:40]),
		}
		info := o.Uint16(b[2:4])
		if h.Magic&0xFE00 != 0xD000 || info&xlpLongHeader == 0 || !pow2(h.SegSize, 1<<20, 1<<30) || !pow2(h.BlockSize, 1<<10, 1<<15) {
			continue
		}
		return h, nil
	}
	return WALHeader{}, errors.New("not a WAL segment: its first page has no long page header (magic, XLP_LONG_HEADER, segment and block size)")
}

func pow2(v, lo, hi uint32) bool { return v >= lo && v <= hi && v&(v-1) == 0 }

// decompressor opens the decompressed stream of an object with compression suffix ext (one of
// barman-cloud's: .gz .bz2 .snappy .xz .zst .lz4; "" for none), as barman-cloud writes them:
// gzip (Python's gzip), bzip2 (bz2), snappy (python-snappy's framed stream), xz (lzma, .xz
// container), zstd (zstandard frames) and lz4 (lz4.frame).
func decompressor(ext string, r io.Reader) (io.Reader, error) {
	switch ext {
	case "":
		return r, nil
	case ".gz":
		return gzip.NewReader(r)
	case ".bz2":
		return bzip2.NewReader(r), nil
	case ".snappy":
		return snappy.NewReader(r), nil
	case ".xz":
		// the LZMA2 dictionary size is the stream's to choose (up to 1.5 GiB), and is allocated
		// whole: larger than barman's largest (preset 9: 64 MiB) is refused before decoding
		br := bufio.NewReaderSize(r, 64)
		head, _ := br.Peek(32)
		if err := xzDictOK(head); err != nil {
			return nil, err
		}
		return xz.NewReader(br)
	case ".zst":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case ".lz4":
		return lz4.NewReader(r), nil
	}
	return nil, fmt.Errorf("unknown compression suffix %q", ext)
}

// xzDictOK checks the first block header of an .xz stream: one LZMA2 filter whose dictionary is
// at most 64 MiB (property byte 28).
func xzDictOK(b []byte) error {
	const streamHeader = 12
	if len(b) < streamHeader+2 {
		return errors.New("xz: too short")
	}
	h := b[streamHeader:]
	size := (int(h[0]) + 1) * 4
	if h[0] == 0 || len(h) < size || h[1]&0x3C != 0 {
		return errors.New("xz: unexpected block header")
	}
	i := 2
	varint := func() (uint64, bool) {
		var v uint64
		for shift := 0; i < size && shift < 63; shift += 7 {
			c := h[i]
			i++
			v |= uint64(c&0x7F) << shift
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if h[1]&0x40 != 0 { // compressed size
		if _, ok := varint(); !ok {
			return errors.New("xz: bad block header")
		}
	}
	if h[1]&0x80 != 0 { // uncompressed size
		if _, ok := varint(); !ok {
			return errors.New("xz: bad block header")
		}
	}
	id, ok1 := varint()
	n, ok2 := varint()
	if !ok1 || !ok2 || h[1]&0x03 != 0 || id != 0x21 || n != 1 || i >= size {
		return errors.New("xz: not a single LZMA2 filter, as barman-cloud writes")
	}
	if d := h[i]; d > 28 {
		return fmt.Errorf("xz: a dictionary of more than 64 MiB (property %d) is refused", d)
	}
	return nil
}

// headerReads are the successive byte limits of a compressed WAL's ranged reads: a WAL page
// header is 40 bytes, which gzip, zstd, xz, lz4 and snappy yield from the first few hundred bytes;
// bzip2 only after a whole block (up to 900 kB before compression), hence the last steps.
var headerReads = []int64{4 << 10, 160 << 10, 1<<20 + 256<<10}

// Prefix returns the first n decompressed bytes of an object whose name ends in a compression
// suffix (or none), reading as little of it as it can: a ranged read of a few KiB, grown only when
// the decompressor needs more. read is the number of bytes fetched over every attempt.
func Prefix(ctx context.Context, s providers.Store, key string, n int) (out []byte, read int64, err error) {
	ext := path.Ext(key)
	if !compressionSuffixes[ext] {
		ext = ""
	}
	limits := headerReads
	if ext == "" {
		limits = []int64{int64(n)}
	}
	for i, limit := range limits {
		data, gerr := s.Get(ctx, key, limit)
		read += int64(len(data))
		if gerr != nil {
			return nil, read, gerr
		}
		whole := int64(len(data)) < limit // the object ended within the read
		dec, derr := decompressor(ext, bytes.NewReader(data))
		if derr == nil {
			buf := make([]byte, n)
			var k int
			k, derr = io.ReadFull(dec, buf)
			if c, ok := dec.(io.Closer); ok {
				c.Close()
			}
			if derr == nil {
				return buf, read, nil
			}
			if whole && (derr == io.ErrUnexpectedEOF || derr == io.EOF) {
				return buf[:k], read, fmt.Errorf("%s holds only %d bytes once decompressed", key, k)
			}
		}
		if whole || i == len(limits)-1 {
			return nil, read, fmt.Errorf("%s: cannot decompress its first %d bytes (%s): %v", key, len(data), strings.TrimPrefix(ext, "."), derr)
		}
	}
	return nil, read, errors.New("unreachable")
}

// ReadWALHeader reads the long page header of a WAL segment object (compressed or not) with
// ranged reads of a few KiB.
func ReadWALHeader(ctx context.Context, s providers.Store, key string) (WALHeader, error) {
	b, read, err := Prefix(ctx, s, key, longHeaderSize)
	if err != nil {
		return WALHeader{BytesRead: read}, err
	}
	h, err := ParseWALHeader(b)
	h.BytesRead = read
	if ext := path.Ext(key); compressionSuffixes[ext] {
		h.Compressed = ext
	}
	if err != nil {
		return h, fmt.Errorf("%s: %v", key, err)
	}
	return h, nil
}
