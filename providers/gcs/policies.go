package gcs

import (
	"context"

	"cloud.google.com/go/storage"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Policies reads the bucket's metadata (storage.buckets.get, which barman-cloud needs anyway):
// retention policy, default event-based hold, versioning, soft delete and lifecycle rules.
func (s *Store) Policies(ctx context.Context) (providers.Policies, error) {
	var p providers.Policies
	a, err := s.b.Attrs(ctx)
	if err != nil {
		e := s.classify("GetBucket", err)
		if e.Kind == providers.KindDenied {
			p.Unread = append(p.Unread, providers.Unread{Setting: "retention policy, holds, versioning and lifecycle rules", Permission: "storage.buckets.get on gs://" + s.loc.Bucket, Msg: e.Msg})
			return p, nil
		}
		return p, e
	}
	return bucketPolicies(a), nil
}

// bucketPolicies turns bucket metadata into the provider-neutral policies.
func bucketPolicies(a *storage.BucketAttrs) providers.Policies {
	var p providers.Policies
	if a.VersioningEnabled {
		p.Versioning = "Enabled"
	}
	if r := a.RetentionPolicy; r != nil && r.RetentionPeriod > 0 {
		p.DefaultRetention, p.LocksOverwrites = r.RetentionPeriod, true
		if r.IsLocked {
			p.LockMode = "locked"
		}
	}
	if a.DefaultEventBasedHold {
		p.EventBasedHold, p.LocksOverwrites = true, true
	}
	if sd := a.SoftDeletePolicy; sd != nil {
		p.SoftDelete = sd.RetentionDuration
	}
	for _, r := range a.Lifecycle.Rules {
		base := providers.LifecycleRule{Enabled: true}
		c := r.Condition
		base.Filtered = len(c.MatchesSuffix) > 0 || !c.CreatedBefore.IsZero() || !c.CustomTimeBefore.IsZero() || len(c.MatchesStorageClasses) > 0 || c.DaysSinceCustomTime > 0
		switch r.Action.Type {
		case storage.DeleteAction:
			noncurrent := c.Liveness == storage.Archived || c.DaysSinceNoncurrentTime > 0 || c.NumNewerVersions > 0 || !c.NoncurrentTimeBefore.IsZero()
			days := int(c.AgeInDays)
			if c.DaysSinceNoncurrentTime > 0 {
				days = int(c.DaysSinceNoncurrentTime)
			}
			if days == 0 {
				days = 1 // AllObjects, or a date condition: everything goes at once
			}
			if noncurrent {
				base.NoncurrentDays = days
			} else {
				base.ExpireDays = days
			}
		case storage.SetStorageClassAction:
			// GCS serves every class directly (no restore), at a retrieval cost
			base.TransitionDays, base.TransitionClass = int(c.AgeInDays), r.Action.StorageClass
		default:
			continue // aborting incomplete uploads touches no object
		}
		prefixes := c.MatchesPrefix
		if len(prefixes) == 0 {
			prefixes = []string{""}
		}
		for _, pre := range prefixes {
			rule := base
			rule.Prefix = pre
			p.Rules = append(p.Rules, rule)
		}
	}
	return p
}
