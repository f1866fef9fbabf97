package checks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// walIndex is a WAL archive listed once: the segments present per timeline (sorted segment
// numbers), every WAL object by name, and the timeline history files.
type walIndex struct {
	segSize   uint64
	segs      map[uint32][]uint64
	objs      map[string]providers.Object
	history   map[uint32]string // timeline → key of its .history file
	entries   int               // WAL objects listed
	truncated bool              // the listing was cut short (more than MaxListPages pages)
}

// indexWALs lists <prefix>/<serverName>/wals/ once, whole (every page: the cost is linear in the
// archive's size and nothing is read twice).
func indexWALs(ctx context.Context, s providers.Store, prefix string, segSize uint64) (*walIndex, error) {
	l, err := s.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, err
	}
	ix := &walIndex{segSize: segSize, segs: map[uint32][]uint64{}, objs: map[string]providers.Object{}, history: map[uint32]string{}, truncated: l.Truncated}
	for _, o := range l.Keys {
		name, ok := WALName(o.Key)
		if !ok {
			continue
		}
		ix.entries++
		name = strings.ToUpper(name)
		if strings.HasSuffix(name, ".HISTORY") {
			name = name[:8] + ".history"
			ix.history[uint32(Timeline(name))] = o.Key
		}
		ix.objs[name] = o
		if tli, seg, ok := parseSegment(name, segSize); ok {
			ix.segs[tli] = append(ix.segs[tli], seg)
		}
	}
	for tli := range ix.segs {
		sort.Slice(ix.segs[tli], func(i, j int) bool { return ix.segs[tli][i] < ix.segs[tli][j] })
	}
	return ix, nil
}

// parseSegment reads a plain segment name: timeline and absolute segment number (LSN / segSize).
func parseSegment(name string, segSize uint64) (uint32, uint64, bool) {
	if !walSegRE.MatchString(name) {
		return 0, 0, false
	}
	tli, _ := strconv.ParseUint(name[:8], 16, 32)
	log, _ := strconv.ParseUint(name[8:16], 16, 32)
	seg, _ := strconv.ParseUint(name[16:24], 16, 32)
	perLog := uint64(0x100000000) / segSize
	if seg >= perLog {
		return 0, 0, false
	}
	return uint32(tli), log*perLog + seg, true
}

// segmentName is the WAL file name of segment seg on timeline tli.
func segmentName(tli uint32, seg, segSize uint64) string {
	perLog := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, seg/perLog, seg%perLog)
}

// lsnText writes an LSN as PostgreSQL does (X/Y).
func lsnText(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// span is a stretch of a restore path: timeline tli holds the WAL from begin up to end (its switch
// point; 0: open, the newest timeline).
type span struct {
	tli        uint32
	begin, end uint64
}

// historyLine is one line of a timeline history file: "parentTLI switchpoint reason".
var historyLine = regexp.MustCompile(`^\s*(\d+)\s+([0-9A-Fa-f]+/[0-9A-Fa-f]+)`)

// ParseHistory reads timeline tli's history file into its restore path: each ancestor timeline
// up to its switch point, then tli itself, open-ended.
func ParseHistory(tli uint32, data []byte) ([]span, error) {
	var path []span
	begin := uint64(0)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := historyLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unexpected line %q", line)
		}
		parent, _ := strconv.ParseUint(m[1], 10, 32)
		sw, _ := ParseLSN(m[2])
		if uint32(parent) >= tli || sw < begin || (len(path) > 0 && uint32(parent) <= path[len(path)-1].tli) {
			return nil, fmt.Errorf("timeline %d does not follow from the previous lines", parent)
		}
		path = append(path, span{tli: uint32(parent), begin: begin, end: sw})
		begin = sw
	}
	return append(path, span{tli: tli, begin: begin}), nil
}

// window is the computed recovery window, with the numbers the recoveryTarget is judged against.
type window struct {
	report         report.Window
	start          *BackupInfo // the backup the window starts from (nil: WAL only)
	earliestLSN    uint64
	latestLSN      uint64
	latestTime     time.Time
	reachesNewest  bool   // the window reaches the newest WAL of the restore path
	brokenBefore   uint64 // with a hole: restore points below this LSN are unreachable from the window's backup
	holeStartLSN   uint64 // the first hole's start (0: none)
	problems       []string
	missingEndWALs []string // backups whose end_wal is not archived
	path           []span
	newestTLI      uint32
}

// recoveryWindow walks the restore path (the newest timeline's history) from the start backup —
// the oldest completed one, or the oldest one retentionPolicy keeps — to the newest archived
// segment, finding the holes from the sorted segment numbers (linear in the listing).
func recoveryWindow(ctx context.Context, r *Run, ix *walIndex, backups []BackupInfo) (*window, error) {
	w := &window{}
	seg := ix.segSize
	// The newest timeline: recovery_target_timeline 'latest' follows the highest history file.
	for tli := range ix.segs {
		w.newestTLI = max(w.newestTLI, tli)
	}
	for tli := range ix.history {
		w.newestTLI = max(w.newestTLI, tli)
	}
	if w.newestTLI == 0 {
		return w, nil
	}
	w.path = []span{{tli: w.newestTLI}}
	if w.newestTLI > 1 {
		key, ok := ix.history[w.newestTLI]
		if !ok {
			w.problems = append(w.problems, fmt.Sprintf("timeline %d has WAL but no %08X.history: a restore cannot follow it", w.newestTLI, w.newestTLI))
		} else {
			data, _, err := Prefix(ctx, r.store(), key, 64<<10)
			if err != nil && len(data) == 0 {
				return nil, err
			}
			p, err := ParseHistory(w.newestTLI, data)
			if err != nil {
				w.problems = append(w.problems, fmt.Sprintf("%s: %v", path.Base(key), err))
			} else {
				w.path = p
			}
		}
	}
	// spanOf returns the index of the path's span holding lsn on timeline tli (-1: not on the path).
	spanOf := func(tli uint32, lsn uint64) int {
		for i, s := range w.path {
			if s.tli == tli && lsn >= s.begin && (s.end == 0 || lsn < s.end) {
				return i
			}
		}
		return -1
	}
	// The start: completed backups on the path, oldest first; retentionPolicy drops the older ones
	// (and the WAL they need: barman's retention deletes both).
	if rp := retentionStart(r, backups); rp > 0 {
		backups = backups[rp:]
	}
	var onPath []BackupInfo
	for _, b := range backups {
		if !walSegRE.MatchString(b.EndWAL) {
			continue
		}
		if _, ok := ix.objs[strings.ToUpper(b.EndWAL)]; !ok {
			w.missingEndWALs = append(w.missingEndWALs, fmt.Sprintf("%s (end_wal %s)", b.ID, b.EndWAL))
		}
		if spanOf(uint32(b.Timeline), b.BeginLSN) >= 0 {
			onPath = append(onPath, b)
		}
	}
	sort.SliceStable(onPath, func(i, j int) bool { return onPath[i].BeginLSN < onPath[j].BeginLSN })
	// expected walks the segments the path needs from lsn on, calling hole for every run of
	// missing ones, and returns the number of segments present and the newest one.
	type hole struct {
		tli      uint32
		from, to uint64
	}
	var holes []hole
	present, presentBeforeHole := 0, 0
	type segRef struct {
		tli uint32
		seg uint64
		ok  bool
	}
	var last, beforeHole segRef
	walk := func(from uint64) {
		holes, present, last.ok, beforeHole = nil, 0, false, segRef{}
		for i, s := range w.path {
			if s.end != 0 && s.end <= from {
				continue
			}
			a := max(s.begin, from) / seg
			if i > 0 && s.begin >= from {
				a = s.begin / seg // the segment holding the switch point is read from the new timeline
			}
			have := ix.segs[s.tli]
			var b uint64
			if s.end != 0 {
				if s.end/seg == 0 {
					continue
				}
				b = s.end/seg - 1
				if b < a {
					continue
				}
			} else {
				if len(have) == 0 || have[len(have)-1] < a {
					break // nothing archived on the newest timeline yet
				}
				b = have[len(have)-1]
			}
			next := a
			k := sort.Search(len(have), func(j int) bool { return have[j] >= a })
			for ; k < len(have) && have[k] <= b; k++ {
				if have[k] > next {
					if len(holes) == 0 {
						beforeHole, presentBeforeHole = last, present
					}
					holes = append(holes, hole{s.tli, next, have[k] - 1})
				}
				next = have[k] + 1
				present++
				last.tli, last.seg, last.ok = s.tli, have[k], true
			}
			if next <= b {
				if len(holes) == 0 {
					beforeHole, presentBeforeHole = last, present
				}
				holes = append(holes, hole{s.tli, next, b})
			}
		}
	}
	var startLSN uint64
	if len(onPath) > 0 {
		w.start = &onPath[0]
		startLSN = w.start.BeginLSN
	} else {
		// WAL only: from the oldest segment on the path
		startLSN = ^uint64(0)
		for _, s := range w.path {
			for _, g := range ix.segs[s.tli] {
				if g*seg >= s.begin && (s.end == 0 || g*seg < s.end) {
					startLSN = min(startLSN, g*seg)
					break
				}
			}
		}
		if startLSN == ^uint64(0) {
			return w, nil
		}
	}
	walk(startLSN)
	if len(holes) > 0 {
		first := holes[0]
		w.holeStartLSN = first.from * seg
		w.report.FirstHole = &report.Hole{From: segmentName(first.tli, first.from, seg), To: segmentName(first.tli, first.to, seg), Missing: int64(first.to - first.from + 1)}
		lastHoleEnd := (holes[len(holes)-1].to + 1) * seg
		// a later backup that begins after the last hole (and whose end is archived) restores to
		// the newest WAL
		var restart *BackupInfo
		for i := range onPath {
			if _, ok := ix.objs[strings.ToUpper(onPath[i].EndWAL)]; ok && onPath[i].BeginLSN >= lastHoleEnd {
				restart = &onPath[i]
				break
			}
		}
		if restart != nil {
			w.start = restart
			walk(restart.BeginLSN)
			w.reachesNewest = len(holes) == 0
		} else {
			// the window ends before the first hole
			w.latestLSN = w.holeStartLSN
			w.report.Latest = &report.RestorePoint{LSN: lsnText(w.latestLSN), Timeline: int(first.tli)}
			if beforeHole.ok {
				name := segmentName(beforeHole.tli, beforeHole.seg, seg)
				w.report.Latest.WAL, w.report.Latest.Timeline = name, int(beforeHole.tli)
				if o := ix.objs[name]; !o.Modified.IsZero() {
					w.latestTime = o.Modified
					w.report.Latest.Time = o.Modified.UTC().Format(time.RFC3339)
				}
			}
		}
	} else {
		w.reachesNewest = true
	}
	w.report.Segments = present
	if !w.reachesNewest && w.report.FirstHole != nil {
		w.report.Segments = presentBeforeHole
	}
	if w.reachesNewest && last.ok {
		name := segmentName(last.tli, last.seg, seg)
		o := ix.objs[name]
		w.latestLSN = (last.seg + 1) * seg
		w.latestTime = o.Modified
		w.report.Latest = &report.RestorePoint{LSN: lsnText(w.latestLSN), Timeline: int(last.tli), WAL: name}
		if !o.Modified.IsZero() {
			w.report.Latest.Time = o.Modified.UTC().Format(time.RFC3339)
		}
	}
	if w.start != nil && w.latestLSN < w.start.EndLSN {
		// the backup ends past the archived WAL (its end_wal is missing): no restore point at all
		w.reachesNewest, w.report.Latest, w.latestTime = false, nil, time.Time{}
	}
	if w.start != nil {
		w.earliestLSN = w.start.EndLSN
		w.report.Earliest = &report.RestorePoint{LSN: lsnText(w.start.EndLSN), Timeline: w.start.Timeline, Backup: w.start.ID}
		if !w.start.EndTime.IsZero() {
			w.report.Earliest.Time = w.start.EndTime.UTC().Format(time.RFC3339)
		}
	}
	startSpan := 0
	if w.start != nil {
		startSpan = max(0, spanOf(uint32(w.start.Timeline), w.start.BeginLSN))
	}
	for _, s := range w.path[startSpan:] {
		if len(w.report.Timelines) > 0 && w.latestLSN != 0 && s.begin > w.latestLSN {
			break
		}
		w.report.Timelines = append(w.report.Timelines, int(s.tli))
	}
	return w, nil
}

// spanForSeg is the index of timeline tli in the path (-1: none).
func spanForSeg(p []span, tli uint32) int {
	for i, s := range p {
		if s.tli == tli {
			return i
		}
	}
	return -1
}

// retentionRE is a retentionPolicy: a number of days, weeks or months.
var retentionPolicyRE = regexp.MustCompile(`^([1-9][0-9]*)([dwm])$`)

// retentionStart returns how many of the oldest backups (sorted oldest first) the source's
// retentionPolicy (the plugin ObjectStore's spec.retentionPolicy) drops: barman's "RECOVERY WINDOW
// OF n DAYS|WEEKS|MONTHS" keeps the backups that end within the window and the newest one before
// it (needed to recover to the window's start), and the WAL from that one on.
func retentionStart(r *Run, backups []BackupInfo) int {
	if r.t.Store == nil {
		return 0
	}
	m := retentionPolicyRE.FindStringSubmatch(strings.TrimSpace(r.t.Store.Spec.RetentionPolicy))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	now := r.opts.Now()
	var por time.Time
	switch m[2] {
	case "d":
		por = now.AddDate(0, 0, -n)
	case "w":
		por = now.AddDate(0, 0, -7*n)
	case "m":
		por = now.AddDate(0, -n, 0)
	}
	keep := 0
	for i, b := range backups {
		if !b.EndTime.After(por) {
			keep = i // the newest backup ending before the point of recoverability
		}
	}
	return keep
}
