package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.RegistryStore = (*store)(nil)

type registryRow struct {
	ID             int64  `orm:"column(id)"`
	Name           string `orm:"column(name)"`
	Type           string `orm:"column(type)"`
	URL            string `orm:"column(url)"`
	Description    string `orm:"column(description)"`
	Insecure       bool   `orm:"column(insecure)"`
	CACertificate  string `orm:"column(ca_certificate)"`
	CredentialType string `orm:"column(credential_type)"`
	AccessKey      string `orm:"column(access_key)"`
	AccessSecret   string `orm:"column(access_secret)"`
	CreationTime   int64  `orm:"column(creation_time)"`
	UpdateTime     int64  `orm:"column(update_time)"`
}

const registryCols = `id, name, type, url, description, insecure, ca_certificate, credential_type, access_key,
	access_secret, creation_time, update_time`

func (r *registryRow) registry() *meta.Registry {
	return &meta.Registry{
		ID:             r.ID,
		Name:           r.Name,
		Type:           r.Type,
		URL:            r.URL,
		Description:    r.Description,
		Insecure:       r.Insecure,
		CACertificate:  r.CACertificate,
		CredentialType: r.CredentialType,
		AccessKey:      r.AccessKey,
		AccessSecret:   r.AccessSecret,
		CreationTime:   fromDBTime(r.CreationTime),
		UpdateTime:     fromDBTime(r.UpdateTime),
	}
}

// CreateRegistry inserts r, sets r.ID and the times, and returns the ID. ErrConflict when the name exists.
func (s *store) CreateRegistry(ctx context.Context, r *meta.Registry) (int64, error) {
	t := now()
	return s.insertRow(ctx, creating("registry", r.Name), stamps{&r.ID, &r.CreationTime, &r.UpdateTime}, t,
		`INSERT INTO registry (name, type, url, description, insecure, ca_certificate, credential_type,
			access_key, access_secret, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.Name, r.Type, r.URL, r.Description, r.Insecure, r.CACertificate, r.CredentialType,
		r.AccessKey, r.AccessSecret, toDBTime(t), toDBTime(t))
}

// GetRegistry returns the registry with that ID.
func (s *store) GetRegistry(ctx context.Context, id int64) (*meta.Registry, error) {
	return getRow(ctx, s.r, fmt.Sprintf("registry %d", id), pure((*registryRow).registry),
		`SELECT `+registryCols+` FROM registry WHERE id = ?`, id)
}

// ListRegistries returns registries ordered by name, filtered by a case-insensitive name substring when
// name != "", and the total count. limit <= 0 returns all.
func (s *store) ListRegistries(ctx context.Context, name string, offset, limit int) ([]*meta.Registry, int64, error) {
	return listNamed(ctx, s, "registries", registryCols, "registry", "name", name, offset, limit, pure((*registryRow).registry))
}

// UpdateRegistry stores every field of r but the ID and creation time, and sets r.UpdateTime.
// ErrConflict when the new name is taken.
func (s *store) UpdateRegistry(ctx context.Context, r *meta.Registry) error {
	t := now()
	return s.updateRow(ctx, updating("registry", r.ID).unique(fmt.Sprintf("registry %q exists", r.Name)), &r.UpdateTime, t,
		`UPDATE registry SET name = ?, type = ?, url = ?, description = ?, insecure = ?, ca_certificate = ?,
			credential_type = ?, access_key = ?, access_secret = ?, update_time = ?
		 WHERE id = ?`,
		r.Name, r.Type, r.URL, r.Description, r.Insecure, r.CACertificate, r.CredentialType,
		r.AccessKey, r.AccessSecret, toDBTime(t), r.ID)
}

// DeleteRegistry deletes the registry in one statement; the foreign key from project backs the check up.
func (s *store) DeleteRegistry(ctx context.Context, id int64) error {
	return s.deleteUnused(ctx, fmt.Sprintf("registry %d", id), "is used by a project",
		func() error { _, err := s.GetRegistry(ctx, id); return err },
		`DELETE FROM registry WHERE id = ? AND NOT EXISTS (SELECT 1 FROM project WHERE registry_id = ?)`, id, id)
}
