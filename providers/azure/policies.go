package azure

import (
	"context"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Policies reads what the data plane shows: the container's immutability policy and legal hold
// (Get Container Properties) and blob soft delete (Get Blob Service Properties, an account-level
// read). Versioning and lifecycle management are management-plane settings it cannot see.
func (s *Store) Policies(ctx context.Context) (providers.Policies, error) {
	var p providers.Policies
	unread := func(setting, perm, op string, err error) error {
		e := s.classify(op, err)
		switch e.Kind {
		case providers.KindDenied, providers.KindAuth:
			p.Unread = append(p.Unread, providers.Unread{Setting: setting, Permission: perm, Msg: e.Msg})
		case providers.KindUnsupported, providers.KindOther:
			if e.Status == 0 {
				return e
			}
			p.Unread = append(p.Unread, providers.Unread{Setting: setting, Msg: e.Msg + " (the store does not offer it)"})
		default:
			return e
		}
		return nil
	}
	props, err := s.c.GetProperties(ctx, nil)
	if err != nil {
		if e := unread("immutability policy and legal hold", "Get Container Properties: the storage account key, an account SAS with srt including c, or the \"Storage Blob Data Reader\" role (a container SAS cannot read them)", "GetContainerProperties", err); e != nil {
			return p, e
		}
	} else {
		p.Immutability = props.HasImmutabilityPolicy != nil && *props.HasImmutabilityPolicy
		p.LegalHold = props.HasLegalHold != nil && *props.HasLegalHold
		p.LocksOverwrites = p.Immutability || p.LegalHold
	}
	if s.svc == nil {
		p.Unread = append(p.Unread, providers.Unread{Setting: "blob soft delete", Msg: "no account-level client for this credential"})
		return p, nil
	}
	sp, err := s.svc.GetProperties(ctx, nil)
	if err != nil {
		if e := unread("blob soft delete", "Get Blob Service Properties: the storage account key or an account SAS with srt including s and sp including r (a container SAS or a data role cannot read it)", "GetBlobServiceProperties", err); e != nil {
			return p, e
		}
	} else if d := sp.DeleteRetentionPolicy; d != nil && d.Enabled != nil && *d.Enabled && d.Days != nil {
		p.SoftDelete = time.Duration(*d.Days) * 24 * time.Hour
	}
	return p, nil
}
