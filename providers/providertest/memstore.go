package providertest

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// MemStore is an in-memory providers.Store that honours the same contract as the real ones
// (delimiters, max, continuation pages, invisible unfinished uploads). It complements the real
// servers in the unit tests of the checks; it never replaces them.
type MemStore struct {
	URL      *url.URL        // what Endpoint returns (point it at a real loopback server for the endpoint check)
	PageSize int             // keys per listing page (<= 0: 1000), to exercise continuation
	Deny     map[string]bool // operations answered with "access denied": Put, Get, List, Delete, DeleteBatch, Multipart
	Missing  bool            // the bucket does not exist: every operation answers not-found
	// Policy is what Policies returns ("Policies" in Deny: every setting is unread). With
	// LocksOverwrites, a Put on an existing key and a Delete are refused, as locked buckets do.
	Policy providers.Policies

	mu      sync.Mutex
	objs    map[string][]byte
	pages   int // listing pages served
	uploads int // unfinished uploads
}

// NewMemStore returns an empty store.
func NewMemStore(endpoint *url.URL) *MemStore {
	return &MemStore{URL: endpoint, objs: map[string][]byte{}}
}

// Objects returns a copy of the stored keys and contents.
func (m *MemStore) Objects() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.objs))
	for k, v := range m.objs {
		out[k] = v
	}
	return out
}

// Pages is the number of listing pages served so far.
func (m *MemStore) Pages() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pages
}

// Unfinished is the number of multipart uploads started and neither completed nor aborted.
func (m *MemStore) Unfinished() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.uploads
}

func (m *MemStore) denied(op string) error {
	if m.Missing {
		return &providers.Error{Op: op, Kind: providers.KindNotFound, Status: 404, Msg: op + ": 404 Not Found (NoSuchBucket)"}
	}
	if m.Deny[op] {
		return &providers.Error{Op: op, Kind: providers.KindDenied, Msg: op + ": access denied"}
	}
	return nil
}

// Endpoint returns URL.
func (m *MemStore) Endpoint() *url.URL { return m.URL }

// MinPartSize is small: nothing is stored on disk.
func (m *MemStore) MinPartSize() int { return 16 }

// CheckBucket succeeds unless the bucket is Missing or listing is denied.
func (m *MemStore) CheckBucket(context.Context) error { return m.denied("List") }

// List pages through the sorted keys under prefix the way S3's ListObjectsV2 does.
func (m *MemStore) List(ctx context.Context, prefix, delimiter string, max int) (providers.Listing, error) {
	if err := m.denied("List"); err != nil {
		return providers.Listing{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.objs))
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	page := m.PageSize
	if page <= 0 {
		page = 1000
	}
	// pages of PageSize entries, as a store serves them
	var entries []providers.Listing
	cur, seen := providers.Listing{}, map[string]bool{}
	for _, k := range keys {
		rest := k[len(prefix):]
		if j := strings.Index(rest, delimiter); delimiter != "" && j >= 0 {
			p := prefix + rest[:j+len(delimiter)]
			if seen[p] {
				continue
			}
			seen[p] = true
			cur.Prefixes = append(cur.Prefixes, p)
		} else {
			cur.Keys = append(cur.Keys, providers.Object{Key: k, Size: int64(len(m.objs[k]))})
		}
		if len(cur.Keys)+len(cur.Prefixes) == page {
			entries, cur = append(entries, cur), providers.Listing{}
		}
	}
	if len(cur.Keys)+len(cur.Prefixes) > 0 || len(entries) == 0 {
		entries = append(entries, cur)
	}
	var out providers.Listing
	for i, pg := range entries {
		if i == providers.ListPages(max, page) {
			out.Truncated = true
			break
		}
		if err := ctx.Err(); err != nil {
			return out, &providers.Error{Op: "List", Kind: providers.KindCanceled, Msg: "List: interrupted", Err: err}
		}
		m.pages++
		out.Keys = append(out.Keys, pg.Keys...)
		out.Prefixes = append(out.Prefixes, pg.Prefixes...)
		if out.Clip(max, i+1 < len(entries)) {
			break
		}
	}
	return out, nil
}

// Put stores an object.
func (m *MemStore) Put(_ context.Context, k string, d []byte, _ providers.PutOptions) error {
	if err := m.denied("Put"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[k]; ok && m.Policy.LocksOverwrites {
		return m.locked("Put", k)
	}
	m.objs[k] = append([]byte(nil), d...)
	return nil
}

func (m *MemStore) locked(op, k string) error {
	return &providers.Error{Op: op, Kind: providers.KindDenied, Status: 403, Code: "Locked", Msg: op + ": 403 Forbidden (" + k + " is under retention)"}
}

// Policies returns Policy (all of it unread when "Policies" is denied).
func (m *MemStore) Policies(context.Context) (providers.Policies, error) {
	if m.Missing {
		return providers.Policies{}, m.denied("Policies")
	}
	if m.Deny["Policies"] {
		return providers.Policies{Unread: []providers.Unread{{Setting: "every policy", Permission: "mem:GetPolicies", Msg: "Policies: access denied"}}}, nil
	}
	return m.Policy, nil
}

// Get returns the first limit bytes of an object.
func (m *MemStore) Get(_ context.Context, k string, limit int64) ([]byte, error) {
	if err := m.denied("Get"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.objs[k]; ok {
		return append([]byte(nil), v[:min(int64(len(v)), limit)]...), nil
	}
	return nil, &providers.Error{Op: "Get", Kind: providers.KindNotFound, Status: 404, Msg: "Get: 404 Not Found"}
}

// Delete removes an object (a missing one is not an error, as on S3).
func (m *MemStore) Delete(_ context.Context, k string) error {
	if err := m.denied("Delete"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[k]; ok && m.Policy.LocksOverwrites {
		return m.locked("Delete", k)
	}
	delete(m.objs, k)
	return nil
}

// DeleteBatch deletes every key ("DeleteBatch" may be denied on its own, as stores refusing bulk
// deletes do).
func (m *MemStore) DeleteBatch(ctx context.Context, keys []string) error {
	if err := m.denied("DeleteBatch"); err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// Exists reports whether an object exists.
func (m *MemStore) Exists(_ context.Context, k string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objs[k]
	return ok, nil
}

// StartMultipart keeps the parts aside until Complete.
func (m *MemStore) StartMultipart(_ context.Context, k string, parts [][]byte, _ providers.PutOptions) (providers.Upload, error) {
	if err := m.denied("Multipart"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.uploads++
	m.mu.Unlock()
	var data []byte
	for _, p := range parts {
		data = append(data, p...)
	}
	return &memUpload{m: m, key: k, data: data}, nil
}

type memUpload struct {
	m    *MemStore
	key  string
	data []byte
	done bool
}

func (u *memUpload) finish() {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if !u.done {
		u.done = true
		u.m.uploads--
	}
}

// Complete makes the object visible.
func (u *memUpload) Complete(ctx context.Context) error {
	if err := u.m.Put(ctx, u.key, u.data, providers.PutOptions{}); err != nil {
		return err
	}
	u.finish()
	return nil
}

// Abort drops the parts.
func (u *memUpload) Abort(context.Context) error {
	u.finish()
	return nil
}
