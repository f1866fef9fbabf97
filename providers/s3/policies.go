package s3

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"

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
// GetObjectLockConfiguration and GetBucketLifecycleConfiguration, concurrently. A denied or
// unsupported read is listed in Unread, naming the permission.
func (s *Store) Policies(ctx context.Context) (providers.Policies, error) {
	var (
		p     providers.Policies
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
	)
	// read runs one call; a failed read is recorded, unless the failure is not about the setting
	// (network, timeout, interruption): then the whole read fails.
	read := func(setting, perm, op string, call func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := call()
			if err == nil {
				return
			}
			e := s.classify(op, err)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case absent[e.Code] || (e.Status == http.StatusNotFound && e.Code != "NoSuchBucket"):
			case e.Kind == providers.KindDenied:
				p.Unread = append(p.Unread, providers.Unread{Setting: setting, Permission: perm, Msg: e.Msg})
			case e.Kind == providers.KindUnsupported || e.Status == http.StatusNotImplemented || e.Status == http.StatusBadRequest || e.Status == http.StatusMethodNotAllowed:
				p.Unread = append(p.Unread, providers.Unread{Setting: setting, Msg: e.Msg + " (the store does not offer it)"})
			case first == nil:
				first = e
			}
		}()
	}
	var (
		v    *s3.GetBucketVersioningOutput
		lock *s3.GetObjectLockConfigurationOutput
		lc   *s3.GetBucketLifecycleConfigurationOutput
	)
	bucket := "arn:aws:s3:::" + s.loc.Bucket
	read("versioning", "s3:GetBucketVersioning on "+bucket, "GetBucketVersioning", func() (err error) {
		v, err = s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &s.loc.Bucket})
		return err
	})
	read("object lock", "s3:GetBucketObjectLockConfiguration on "+bucket, "GetObjectLockConfiguration", func() (err error) {
		lock, err = s.c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &s.loc.Bucket})
		return err
	})
	read("lifecycle rules", "s3:GetLifecycleConfiguration on "+bucket, "GetBucketLifecycleConfiguration", func() (err error) {
		lc, err = s.c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &s.loc.Bucket})
		return err
	})
	wg.Wait()
	if first != nil {
		return p, first
	}
	sort.Slice(p.Unread, func(i, j int) bool { return p.Unread[i].Setting > p.Unread[j].Setting }) // versioning, object lock, lifecycle rules
	if v != nil {
		p.Versioning = string(v.Status)
	}
	if lock != nil && lock.ObjectLockConfiguration != nil {
		c := lock.ObjectLockConfiguration
		p.ObjectLock = c.ObjectLockEnabled == types.ObjectLockEnabledEnabled
		if c.Rule != nil && c.Rule.DefaultRetention != nil {
			d := c.Rule.DefaultRetention
			p.LockMode = string(d.Mode)
			p.DefaultRetention = providers.Days(int(aws.ToInt32(d.Days)) + 365*int(aws.ToInt32(d.Years)))
		}
	}
	if lc != nil {
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
