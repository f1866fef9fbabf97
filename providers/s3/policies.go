package s3

import (
	"context"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// restoreClasses are the storage classes whose objects must be restored before a GET works.
var restoreClasses = map[string]bool{"GLACIER": true, "DEEP_ARCHIVE": true}

// absent are the answers of a bucket without the setting asked for.
var absent = map[string]bool{
	"ObjectLockConfigurationNotFoundError": true, "NoSuchObjectLockConfiguration": true,
	"NoSuchLifecycleConfiguration": true, "NoSuchBucketPolicy": true,
}

// Policies reads versioning, Object Lock and lifecycle rules with GetBucketVersioning,
// GetObjectLockConfiguration and GetBucketLifecycleConfiguration. A denied or unsupported read
// is listed in Unread, naming the permission.
func (s *Store) Policies(ctx context.Context) (providers.Policies, error) {
	var p providers.Policies
	// unread records a failed read; it returns the error when the failure is not about the
	// setting (network, timeout, interruption): then nothing more is worth asking.
	unread := func(setting, perm, op string, err error) error {
		e := s.classify(op, err)
		switch {
		case absent[e.Code] || (e.Status == http.StatusNotFound && e.Code != "NoSuchBucket"):
			return nil
		case e.Kind == providers.KindDenied:
			p.Unread = append(p.Unread, providers.Unread{Setting: setting, Permission: perm, Msg: e.Msg})
		case e.Kind == providers.KindUnsupported || e.Status == http.StatusNotImplemented || e.Status == http.StatusBadRequest || e.Status == http.StatusMethodNotAllowed:
			p.Unread = append(p.Unread, providers.Unread{Setting: setting, Msg: e.Msg + " (the store does not offer it)"})
		default:
			return e
		}
		return nil
	}
	v, err := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &s.loc.Bucket})
	if err != nil {
		if e := unread("versioning", "s3:GetBucketVersioning on arn:aws:s3:::"+s.loc.Bucket, "GetBucketVersioning", err); e != nil {
			return p, e
		}
	} else {
		p.Versioning = string(v.Status)
	}
	lock, err := s.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &s.loc.Bucket})
	if err != nil {
		if e := unread("object lock", "s3:GetBucketObjectLockConfiguration on arn:aws:s3:::"+s.loc.Bucket, "GetObjectLockConfiguration", err); e != nil {
			return p, e
		}
	} else if c := lock.ObjectLockConfiguration; c != nil {
		p.ObjectLock = c.ObjectLockEnabled == types.ObjectLockEnabledEnabled
		if c.Rule != nil && c.Rule.DefaultRetention != nil {
			d := c.Rule.DefaultRetention
			p.LockMode = string(d.Mode)
			p.DefaultRetention = providers.Days(int(aws.ToInt32(d.Days)) + 365*int(aws.ToInt32(d.Years)))
		}
	}
	lc, err := s.c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &s.loc.Bucket})
	if err != nil {
		if e := unread("lifecycle rules", "s3:GetLifecycleConfiguration on arn:aws:s3:::"+s.loc.Bucket, "GetBucketLifecycleConfiguration", err); e != nil {
			return p, e
		}
	} else {
		for _, r := range lc.Rules {
			p.Rules = append(p.Rules, lifecycleRule(r))
		}
	}
	return p, nil
}

// lifecycleRule turns an S3 rule into the provider-neutral one.
func lifecycleRule(r types.LifecycleRule) providers.LifecycleRule {
	out := providers.LifecycleRule{ID: aws.ToString(r.ID), Enabled: r.Status == types.ExpirationStatusEnabled, Prefix: aws.ToString(r.Prefix)}
	if f := r.Filter; f != nil {
		switch {
		case f.And != nil:
			out.Prefix = aws.ToString(f.And.Prefix)
			out.Filtered = len(f.And.Tags) > 0 || f.And.ObjectSizeGreaterThan != nil || f.And.ObjectSizeLessThan != nil
		case f.Prefix != nil:
			out.Prefix = aws.ToString(f.Prefix)
		}
		out.Filtered = out.Filtered || f.Tag != nil || f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil
	}
	if e := r.Expiration; e != nil && e.Days != nil {
		out.ExpireDays = int(*e.Days)
	} else if e != nil && e.Date != nil {
		out.ExpireDays = 1 // a fixed date: every object older than it goes at once
	}
	if n := r.NoncurrentVersionExpiration; n != nil && n.NoncurrentDays != nil {
		out.NoncurrentDays = int(*n.NoncurrentDays)
	}
	for _, t := range r.Transitions {
		if t.Days == nil && t.Date == nil {
			continue
		}
		class := string(t.StorageClass)
		if out.TransitionClass == "" || restoreClasses[strings.ToUpper(class)] {
			out.TransitionDays, out.TransitionClass = int(aws.ToInt32(t.Days)), class
			out.NeedsRestore = restoreClasses[strings.ToUpper(class)]
		}
	}
	return out
}
