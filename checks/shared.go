package checks

import (
	"context"
	"errors"
	"sync"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// storeProbes are the probes a run makes once per store (endpoint, bucket and identity) rather
// than once per target: what they test is the store's, not the folder's (the size of a multipart
// part, the part-number limit, equal parts). Targets on the same store share the verdict.
type storeProbes struct {
	mu sync.Mutex
	m  map[string]*storeProbe
}

// storeProbe is one such probe: made by the first target that claims it, awaited by the others.
type storeProbe struct {
	by     string        // the target that makes it
	done   chan struct{} // closed once status and message (or val and err) are set
	status report.Status
	msg    string
	val    any   // what a shared read returned (sharedRead)
	err    error // and its error
	once   sync.Once
}

// claim returns the store's probe and whether the caller (target id) is the one to make it.
func (s *storeProbes) claim(key, id string) (*storeProbe, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.m[key]; p != nil {
		return p, false
	}
	p := &storeProbe{by: id, done: make(chan struct{})}
	s.m[key] = p
	return p, true
}

// finish records the verdict (the first one counts).
func (p *storeProbe) finish(status report.Status, msg string) {
	p.once.Do(func() {
		p.status, p.msg = status, msg
		close(p.done)
	})
}

// wait returns the verdict, or false when ctx ends first.
func (p *storeProbe) wait(ctx context.Context) (report.Status, string, bool) {
	select {
	case <-p.done:
		return p.status, p.msg, true
	case <-ctx.Done():
		return "", "", false
	}
}

// sharedRead returns what read returns for the target's store — endpoint, bucket and identity —
// calling it once per run: the first target to ask reads, the others wait for its answer (or
// their ctx). For reads every folder of the store shares: its policies, the listing of the
// destination path above the servers' folders.
func sharedRead[T any](ctx context.Context, r *Run, what string, read func(context.Context) (T, error)) (T, error) {
	p, mine := r.shared.claim(what+"\x00"+r.storeKey(), r.t.ID)
	if mine {
		v, err := read(ctx)
		p.once.Do(func() {
			p.val, p.err = v, err
			close(p.done)
		})
		return v, err
	}
	var zero T
	select {
	case <-p.done:
		if errors.Is(p.err, context.Canceled) || errors.Is(p.err, context.DeadlineExceeded) {
			return read(ctx) // the first target ran out of time, not the store: read again
		}
		v, _ := p.val.(T)
		return v, p.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// storeKey is what identifies a target's store for storeProbes.
func (r *Run) storeKey() string {
	return r.t.Provider() + "\x00" + r.store().Endpoint().String() + "\x00" + r.loc.Account + "\x00" + r.loc.Bucket + "\x00" + r.pt.CredentialDigest()
}
