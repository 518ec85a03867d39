package api

import (
	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/meta"
)

const (
	maskedSecret  = admin.MaskedSecret // Harbor shows this in place of a stored secret
	statusUnknown = "unknown"
)

type credentialReq struct {
	Type         *string `json:"type"`
	AccessKey    *string `json:"access_key"`
	AccessSecret *string `json:"access_secret"`
}

// registryReq is the body of POST and PUT /registries and POST /registries/ping. It accepts the nested
// credential of Harbor's Registry model and the flat fields of its RegistryUpdate and RegistryPing
// models; flat fields win. Absent fields leave the current value.
type registryReq struct {
	ID             *int64         `json:"id"` // ping only
	Name           *string        `json:"name"`
	Type           *string        `json:"type"`
	URL            *string        `json:"url"`
	Insecure       *bool          `json:"insecure"`
	Description    *string        `json:"description"`
	CACertificate  *string        `json:"ca_certificate"`
	Credential     *credentialReq `json:"credential"`
	CredentialType *string        `json:"credential_type"`
	AccessKey      *string        `json:"access_key"`
	AccessSecret   *string        `json:"access_secret"`
}

// apply sets the fields present in req on r, except the secret, which it returns: nil when the request
// keeps the current one (absent, or Harbor's mask "*****"), else the new plaintext ("" clears it).
func (req *registryReq) apply(r *meta.Registry) *string {
	set := func(dst, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Name, req.Name)
	set(&r.Type, req.Type)
	set(&r.URL, req.URL)
	set(&r.Description, req.Description)
	set(&r.CACertificate, req.CACertificate)
	if req.Insecure != nil {
		r.Insecure = *req.Insecure
	}
	var secret *string
	creds := []credentialReq{{req.CredentialType, req.AccessKey, req.AccessSecret}}
	if req.Credential != nil {
		creds = append([]credentialReq{*req.Credential}, creds...)
	}
	for _, c := range creds {
		set(&r.CredentialType, c.Type)
		set(&r.AccessKey, c.AccessKey)
		if c.AccessSecret != nil && *c.AccessSecret != maskedSecret {
			secret = c.AccessSecret
		}
	}
	return secret
}

// hasSettings reports whether req sets anything but the ID.
func (req *registryReq) hasSettings() bool {
	c := *req
	c.ID = nil
	return c != registryReq{}
}

type credentialJSON struct {
	Type         string `json:"type"`
	AccessKey    string `json:"access_key"`
	AccessSecret string `json:"access_secret"`
}

// registryJSON is Harbor's Registry model plus ca_certificate.
type registryJSON struct {
	ID            int64          `json:"id"`
	Name          string         `json:"name"`
	Type          string         `json:"type"`
	URL           string         `json:"url"`
	Insecure      bool           `json:"insecure"`
	Description   string         `json:"description"`
	CACertificate string         `json:"ca_certificate,omitempty"`
	Credential    credentialJSON `json:"credential"`
	Status        string         `json:"status"`
	CreationTime  harborTime     `json:"creation_time"`
	UpdateTime    harborTime     `json:"update_time"`
}

// registryToJSON never includes the secret: a stored one shows as "*****".
func (a *API) registryToJSON(r *meta.Registry) registryJSON {
	c := credentialJSON{Type: r.CredentialType, AccessKey: r.AccessKey}
	if c.Type == "" {
		c.Type = admin.CredentialBasic
	}
	if r.AccessSecret != "" {
		c.AccessSecret = maskedSecret
	}
	status := statusUnknown
	if s, ok := a.status.Load(r.ID); ok {
		status = s.(string)
	}
	return registryJSON{
		ID: r.ID, Name: r.Name, Type: r.Type, URL: r.URL, Insecure: r.Insecure, Description: r.Description,
		CACertificate: r.CACertificate, Credential: c, Status: status,
		CreationTime: harborTime(r.CreationTime), UpdateTime: harborTime(r.UpdateTime),
	}
}
