package checks

import (
	"path"
	"regexp"
	"strconv"
)

// walRE is barman's _xlog_re: a WAL segment (24 hex digits, optionally .XXXXXXXX.backup or
// .partial) or a timeline history file (8 hex digits + .history).
var walRE = regexp.MustCompile(`^([0-9A-Fa-f]{8})(?:([0-9A-Fa-f]{8})([0-9A-Fa-f]{8})(?:\.[0-9A-Fa-f]{8}\.backup|\.partial)?|\.history)$`)

// walSegRE is a plain WAL segment name (no .partial, .backup or .history).
var walSegRE = regexp.MustCompile(`^[0-9A-Fa-f]{24}$`)

// compressionSuffixes are the suffixes barman-cloud strips before matching (one at most). Barman
// 3.4 knows .gz, .bz2 and .snappy; the barman in CloudNativePG's images also .xz, .zst and .lz4.
var compressionSuffixes = map[string]bool{".gz": true, ".bz2": true, ".snappy": true, ".xz": true, ".zst": true, ".lz4": true}

// WALName returns the WAL name of an object key under wals/ (without compression suffix) and
// whether barman-cloud counts it as a WAL file, exactly as CloudBackupCatalog.get_wal_paths does.
func WALName(key string) (string, bool) {
	base := path.Base(key)
	if walRE.MatchString(base) {
		return base, true
	}
	ext := path.Ext(base)
	if compressionSuffixes[ext] {
		name := base[:len(base)-len(ext)]
		if walRE.MatchString(name) {
			return name, true
		}
	}
	return "", false
}

// Timeline returns the timeline of a WAL or history file name.
func Timeline(walName string) int {
	if len(walName) < 8 {
		return 0
	}
	tl, err := strconv.ParseUint(walName[:8], 16, 32)
	if err != nil {
		return 0
	}
	return int(tl)
}
