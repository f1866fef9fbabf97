package checks

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BackupInfo is what barman's backup.info says about one base backup.
type BackupInfo struct {
	ID        string
	Status    string // DONE, STARTED, FAILED, …; "" when backup.info is missing or unreadable
	Problem   string // why the backup is not usable
	BeginTime time.Time
	EndTime   time.Time
	BeginWAL  string
	EndWAL    string
	BeginLSN  uint64
	EndLSN    uint64
	Timeline  int
	SegSize   uint64
	SystemID  string // systemid: the PostgreSQL system identifier the backup was taken of
}

// ParseBackupInfo reads barman's key=value backup.info.
func ParseBackupInfo(id string, data []byte) BackupInfo {
	b := BackupInfo{ID: id, SegSize: 16 << 20}
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			kv[k] = v
		}
	}
	b.Status = kv["status"]
	b.SystemID = strings.TrimSpace(kv["systemid"])
	b.BeginWAL, b.EndWAL = kv["begin_wal"], kv["end_wal"]
	b.BeginTime, _ = ParseTime(kv["begin_time"])
	b.EndTime, _ = ParseTime(kv["end_time"])
	b.BeginLSN, _ = ParseLSN(kv["begin_xlog"])
	b.EndLSN, _ = ParseLSN(kv["end_xlog"])
	b.Timeline, _ = strconv.Atoi(kv["timeline"])
	if s, err := strconv.ParseUint(kv["xlog_segment_size"], 10, 64); err == nil && s > 0 {
		b.SegSize = s
	}
	switch {
	case b.Status == "":
		b.Problem = "backup.info has no status"
	case b.Status != "DONE":
		b.Problem = "status " + b.Status
	case !walSegRE.MatchString(b.BeginWAL) || !walSegRE.MatchString(b.EndWAL):
		b.Problem = "backup.info lacks begin_wal/end_wal"
	}
	return b
}

// ParseTime reads the time formats of backup.info and of recoveryTarget.targetTime.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05.999999Z07:00",
		time.RFC3339Nano, "2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05-07", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse time %q", s)
}

// ParseLSN reads a PostgreSQL LSN "X/Y".
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	return h<<32 | l, nil
}

// Segments returns the WAL segment names from begin through end (same timeline), at most limit.
func Segments(begin, end string, segSize uint64, limit int) ([]string, error) {
	if !walSegRE.MatchString(begin) || !walSegRE.MatchString(end) || begin[:8] != end[:8] {
		return nil, fmt.Errorf("cannot walk from %s to %s", begin, end)
	}
	perLog := uint64(0x100000000) / segSize
	log, _ := strconv.ParseUint(begin[8:16], 16, 32)
	seg, _ := strconv.ParseUint(begin[16:24], 16, 32)
	var out []string
	for len(out) < limit {
		name := fmt.Sprintf("%s%08X%08X", strings.ToUpper(begin[:8]), log, seg)
		out = append(out, name)
		if strings.EqualFold(name, end) {
			return out, nil
		}
		if seg++; seg >= perLog {
			seg, log = 0, log+1
		}
	}
	return out, fmt.Errorf("more than %d segments from %s to %s", limit, begin, end)
}
