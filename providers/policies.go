package providers

import (
	"strings"
	"time"
)

// Policies are the store's own settings that decide what happens to objects weeks after they are
// written: versioning, object lock and retention, holds, soft delete and lifecycle rules. A
// provider reads what its data plane shows with the calls barman's identity may be allowed; a
// setting it could not read is in Unread (never an error of the whole read).
type Policies struct {
	// Versioning is "Enabled", "Suspended" or "" (never enabled / not versioned).
	Versioning string
	// ObjectLock: S3 Object Lock is enabled on the bucket (every object version can be locked).
	ObjectLock bool
	// LockMode is the default retention's mode (S3: GOVERNANCE or COMPLIANCE; GCS: "locked" when
	// the bucket retention policy is locked), "" without a default retention.
	LockMode string
	// DefaultRetention is how long every new object is kept from deletion (S3 Object Lock default
	// retention, GCS bucket retention policy), 0 for none.
	DefaultRetention time.Duration
	// LocksOverwrites: a new object can be neither overwritten nor deleted until its retention
	// ends (GCS retention policy; Azure container immutability policy or legal hold). S3 Object
	// Lock only protects versions: an overwrite adds a version, a delete a marker.
	LocksOverwrites bool
	// EventBasedHold: GCS default event-based hold (new objects are held until released).
	EventBasedHold bool
	// Immutability / LegalHold: Azure container-level immutability policy and legal hold.
	Immutability bool
	LegalHold    bool
	// SoftDelete is how long deleted objects are kept (and billed) after a delete, 0 for none.
	SoftDelete time.Duration
	// Rules are the lifecycle rules, as the store holds them.
	Rules []LifecycleRule
	// Unread are the settings that could not be read (denied, unsupported).
	Unread []Unread
}

// LifecycleRule is one lifecycle rule of a bucket.
type LifecycleRule struct {
	ID      string
	Prefix  string // objects it applies to ("" for the whole bucket)
	Enabled bool
	// Filtered: the rule also has conditions other than the prefix (tags, sizes): it may not
	// apply to barman's objects, which carry no such tags unless configured.
	Filtered bool
	// ExpireDays deletes current objects that many days after their creation (0: no expiration).
	ExpireDays int
	// NoncurrentDays deletes noncurrent versions that many days after they became noncurrent.
	NoncurrentDays int
	// TransitionDays / TransitionClass move objects to another storage class.
	TransitionDays  int
	TransitionClass string
	// NeedsRestore: objects in TransitionClass must be restored before they can be read.
	NeedsRestore bool
}

// Applies reports whether the rule can act on objects under prefix (the rule's prefix contains
// it, or lies inside it).
func (r LifecycleRule) Applies(prefix string) bool {
	return strings.HasPrefix(prefix, r.Prefix) || strings.HasPrefix(r.Prefix, prefix)
}

// Unread is a setting a provider could not read.
type Unread struct {
	Setting    string // e.g. "versioning", "lifecycle rules"
	Permission string // what reading it needs, e.g. s3:GetBucketVersioning
	Msg        string // the (redacted) answer
}

// Days is a whole number of days as a Duration.
func Days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
