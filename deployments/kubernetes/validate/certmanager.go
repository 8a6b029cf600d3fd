package validate

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cert-manager's types are not in k8s.io/api, and importing cert-manager
// would pull its whole dependency tree into this module. These are the
// parts of cert-manager.io/v1 that an overlay here may use, with
// cert-manager's JSON names, so that Decode stays strict: a misspelt
// field (dnsName, secretname) is an error, as the API server's schema
// validation would make it. A field cert-manager has but these types lack
// is an error too: add it here when an overlay needs it. Issuers of the
// ACME, Vault and Venafi kinds are not modelled.

// CertManagerGroup is cert-manager's API group.
const CertManagerGroup = "cert-manager.io"

var certManagerV1 = schema.GroupVersion{Group: CertManagerGroup, Version: "v1"}

// Certificate is a cert-manager.io/v1 Certificate.
type Certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CertificateSpec `json:"spec"`
}

// CertificateSpec is the part of cert-manager's CertificateSpec modelled.
type CertificateSpec struct {
	Subject               *X509Subject        `json:"subject,omitempty"`
	LiteralSubject        string              `json:"literalSubject,omitempty"`
	CommonName            string              `json:"commonName,omitempty"`
	Duration              *metav1.Duration    `json:"duration,omitempty"`
	RenewBefore           *metav1.Duration    `json:"renewBefore,omitempty"`
	RenewBeforePercentage *int32              `json:"renewBeforePercentage,omitempty"`
	DNSNames              []string            `json:"dnsNames,omitempty"`
	IPAddresses           []string            `json:"ipAddresses,omitempty"`
	URIs                  []string            `json:"uris,omitempty"`
	EmailAddresses        []string            `json:"emailAddresses,omitempty"`
	SecretName            string              `json:"secretName"`
	SecretTemplate        *SecretTemplate     `json:"secretTemplate,omitempty"`
	IssuerRef             IssuerRef           `json:"issuerRef"`
	IsCA                  bool                `json:"isCA,omitempty"`
	Usages                []string            `json:"usages,omitempty"`
	PrivateKey            *CertificatePrivKey `json:"privateKey,omitempty"`
	SignatureAlgorithm    string              `json:"signatureAlgorithm,omitempty"`
	EncodeUsagesInRequest *bool               `json:"encodeUsagesInRequest,omitempty"`
	RevisionHistoryLimit  *int32              `json:"revisionHistoryLimit,omitempty"`
}

// X509Subject is a certificate's subject, beside its common name.
type X509Subject struct {
	Organizations       []string `json:"organizations,omitempty"`
	Countries           []string `json:"countries,omitempty"`
	OrganizationalUnits []string `json:"organizationalUnits,omitempty"`
	Localities          []string `json:"localities,omitempty"`
	Provinces           []string `json:"provinces,omitempty"`
	StreetAddresses     []string `json:"streetAddresses,omitempty"`
	PostalCodes         []string `json:"postalCodes,omitempty"`
	SerialNumber        string   `json:"serialNumber,omitempty"`
}

// SecretTemplate is what cert-manager copies onto the Secret it writes.
type SecretTemplate struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// IssuerRef names the Issuer or ClusterIssuer that signs a Certificate.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// CertificatePrivKey is how the certificate's key is made.
type CertificatePrivKey struct {
	RotationPolicy string `json:"rotationPolicy,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
}

// Issuer is a cert-manager.io/v1 Issuer or ClusterIssuer.
type Issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IssuerSpec `json:"spec"`
}

// IssuerSpec: the self-signed and CA issuers.
type IssuerSpec struct {
	SelfSigned *SelfSignedIssuer `json:"selfSigned,omitempty"`
	CA         *CAIssuer         `json:"ca,omitempty"`
}

// SelfSignedIssuer signs each certificate with its own key.
type SelfSignedIssuer struct {
	CRLDistributionPoints []string `json:"crlDistributionPoints,omitempty"`
}

// CAIssuer signs with the CA in a Secret of the Issuer's namespace.
type CAIssuer struct {
	SecretName             string   `json:"secretName"`
	CRLDistributionPoints  []string `json:"crlDistributionPoints,omitempty"`
	OCSPServers            []string `json:"ocspServers,omitempty"`
	IssuingCertificateURLs []string `json:"issuingCertificateURLs,omitempty"`
}

// Usages and the Secret keys cert-manager writes.
const (
	UsageServerAuth       = "server auth"
	UsageDigitalSignature = "digital signature"
	TLSCertKey            = "tls.crt" // corev1.TLSCertKey
	TLSPrivateKeyKey      = "tls.key" // corev1.TLSPrivateKeyKey
	CACertKey             = "ca.crt"  // cert-manager's CA bundle; not every issuer fills it
)

func (c *Certificate) DeepCopyObject() runtime.Object { return jsonCopy(c) }
func (i *Issuer) DeepCopyObject() runtime.Object      { return jsonCopy(i) }

// jsonCopy deep-copies a value of one of the types above, which hold
// nothing JSON loses.
func jsonCopy[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

// Certificates returns the cert-manager Certificates.
func (m Manifests) Certificates() []*Certificate { return all[*Certificate](m) }

// Issuers returns the cert-manager Issuers and ClusterIssuers.
func (m Manifests) Issuers() []*Issuer { return all[*Issuer](m) }

// issuer returns the Issuer (kind "Issuer") or ClusterIssuer called name.
func (m Manifests) issuer(kind, name string) *Issuer {
	for _, i := range m.Issuers() {
		if i.Kind == kind && i.Name == name {
			return i
		}
	}
	return nil
}
