package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PGBin is Debian's PostgreSQL 15.
const PGBin = "/usr/lib/postgresql/15/bin"

// Postgres is a real PostgreSQL server on a Unix socket, run as the postgres user, whose
// archive_command is the real barman-cloud-wal-archive 3.13 (the reference root, see BarmanRoot).
type Postgres struct {
	Dir  string
	Port int
	env  map[string]string
	t    testing.TB
	root string // the barman 3.13 root
}

// StartPostgres initialises and starts a server archiving WAL with barman-cloud-wal-archive
// (walArchiveArgs: its arguments before %p, e.g. --cloud-provider aws-s3 … s3://b/p server).
// env is the backup client's environment (credentials).
func StartPostgres(t testing.TB, env map[string]string, walArchiveArgs ...string) *Postgres {
	t.Helper()
	RequireBinary(t, PGBin+"/initdb")
	root := BarmanRoot(t)
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("/tmp", "pf-pg-") // under /tmp: visible in the barman root
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chown(dir, uid, gid)
	p := &Postgres{Dir: dir, Port: freePort(t), env: env, t: t, root: root}
	// The backup client runs with env, as CNPG's instance manager runs it.
	p.script("archive.sh", "barman-cloud-wal-archive", walArchiveArgs...)
	// PauseArchiving makes the archive_command fail while DIR/archive.off exists.
	if b, err := os.ReadFile(dir + "/archive.sh"); err == nil {
		os.WriteFile(dir+"/archive.sh", []byte(strings.Replace(string(b), "\n", "\n[ -e "+dir+"/archive.off ] && exit 1\n", 1)), 0o755)
	}
	p.run("initdb", PGBin+"/initdb", "-D", dir+"/data", "-A", "trust", "--no-sync", "-U", "postgres")
	conf := fmt.Sprintf("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nport = %d\nwal_level = replica\narchive_mode = on\narchive_command = '%s/archive.sh %%p'\nfsync = off\n", dir, p.Port, dir)
	f, err := os.OpenFile(dir+"/data/postgresql.conf", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	p.run("pg_ctl start", PGBin+"/pg_ctl", "-D", dir+"/data", "-w", "-l", dir+"/log", "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", PGBin+"/pg_ctl", "-D", dir+"/data", "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	})
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// script writes DIR/name: exports env, then runs the barman-cloud command cmd of the 3.13 root (as
// the postgres user: in a user namespace) with args and "$@".
func (p *Postgres) script(name, cmd string, args ...string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\nexport PATH=/usr/bin:/bin\n")
	keys := make([]string, 0, len(p.env))
	for k := range p.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(p.env[k], "'", `'\''`))
	}
	b.WriteString("exec " + strings.Join(barmanCommand(p.root, cmd, false), " "))
	for _, a := range args {
		b.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	b.WriteString(` "$@"` + "\n")
	// chroot starts in /: PostgreSQL's relative %p (pg_wal/…) is made absolute first
	script := strings.Replace(b.String(), "exec ", `if [ $# -ge 1 ]; then case "$1" in /*) ;; *) p="$PWD/$1"; shift; set -- "$p" "$@" ;; esac; fi`+"\nexec ", 1)
	b.Reset()
	b.WriteString(script)
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o755); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *Postgres) run(what string, args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		log, _ := os.ReadFile(p.Dir + "/log")
		p.t.Fatalf("%s: %v\n%s\nserver log:\n%s", what, err, out, log)
	}
	return out
}

func (p *Postgres) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	cmd.Dir = p.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TryBackup is Backup when the backup may fail: its output and error.
func (p *Postgres) TryBackup(backupArgs ...string) (string, error) {
	p.t.Helper()
	s := p.script("backup.sh", "barman-cloud-backup", append([]string{"--immediate-checkpoint", "-h", p.Dir, "-p", strconv.Itoa(p.Port), "-U", "postgres"}, backupArgs...)...)
	return p.try(s)
}

// SQL runs one statement with psql and returns its unaligned output.
func (p *Postgres) SQL(q string) string {
	p.t.Helper()
	return strings.TrimSpace(p.run("psql", PGBin+"/psql", "-h", p.Dir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-XAtqc", q))
}

// Backup takes a real base backup with barman-cloud-backup 3.13 --immediate-checkpoint.
func (p *Postgres) Backup(backupArgs ...string) string {
	p.t.Helper()
	s := p.script("backup.sh", "barman-cloud-backup", append([]string{"--immediate-checkpoint", "-h", p.Dir, "-p", strconv.Itoa(p.Port), "-U", "postgres"}, backupArgs...)...)
	return p.run("barman-cloud-backup", s)
}

// WaitArchived switches WAL and waits until the archiver has archived at least upTo.
func (p *Postgres) WaitArchived(upTo string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		last := p.SQL("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		if len(last) >= 24 && strings.ToUpper(last[:24]) >= strings.ToUpper(upTo) {
			return
		}
		p.SQL("SELECT pg_switch_wal()")
		time.Sleep(300 * time.Millisecond)
	}
	log, _ := os.ReadFile(p.Dir + "/log")
	p.t.Fatalf("WAL %s not archived within 60 s; server log:\n%s", upTo, log)
}

// Stop shuts the server down (fast), after which it archives nothing more: a store snapshot taken
// afterwards stays valid.
func (p *Postgres) Stop() {
	p.t.Helper()
	p.run("pg_ctl stop", PGBin+"/pg_ctl", "-D", p.Dir+"/data", "-m", "fast", "-w", "stop")
}

// PauseArchiving makes the archive_command fail (exit 1) until ResumeArchiving: the segments
// written meanwhile are not archived.
func (p *Postgres) PauseArchiving() {
	p.t.Helper()
	if err := os.WriteFile(p.Dir+"/archive.off", nil, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// ResumeArchiving lets the archive_command work again.
func (p *Postgres) ResumeArchiving() { os.Remove(p.Dir + "/archive.off") }

// SystemID is the server's system identifier (pg_controldata's "Database system identifier").
func (p *Postgres) SystemID() string {
	p.t.Helper()
	return p.SQL("SELECT system_identifier FROM pg_control_system()")
}

// StopImmediate shuts the server down without a final checkpoint or archiving.
func (p *Postgres) StopImmediate() {
	p.t.Helper()
	p.run("pg_ctl stop", PGBin+"/pg_ctl", "-D", p.Dir+"/data", "-m", "immediate", "-w", "stop")
}

// Promote makes the server switch to a new timeline as a promoted standby does: it is stopped,
// restarted as a standby (standby.signal; it replays its own pg_wal) and promoted. Its archiver
// then archives the new timeline's history file and WAL.
func (p *Postgres) Promote() {
	p.t.Helper()
	p.Stop()
	p.run("standby.signal", "touch", p.Dir+"/data/standby.signal")
	p.run("pg_ctl start", PGBin+"/pg_ctl", "-D", p.Dir+"/data", "-w", "-l", p.Dir+"/log", "start")
	p.run("pg_ctl promote", PGBin+"/pg_ctl", "-D", p.Dir+"/data", "-w", "promote")
}
