package validate

import (
	"crypto/x509"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ClusterDomain is the cluster's DNS domain the certificate's names are
// checked under; clusters with another one need other dnsNames.
const ClusterDomain = "cluster.local"

// tls reports whether ferryd serves its control plane over TLS.
func (p *pod) tls() bool { return p.set["tls-cert"] != "" || p.set["tls-key"] != "" }

// checkTLS checks a rendering whose ferryd serves TLS: the data channel
// is not left plaintext, each TLS file is a key of a Secret mounted
// read-only where ferryd (uid and fsGroup 65532) can read it, and a
// cert-manager Certificate that issues that Secret names what clients
// dial. The health listener and the probes are checked by checkPorts and
// checkProbes, its absence from Services and the NetworkPolicy by
// checkServices and checkNetworkPolicy.
func (p *pod) checkTLS(errs *problems) {
	if !p.tls() {
		if p.set["data-tls"] == "required" {
			errs.addf("--data-tls=required without --tls-cert/--tls-key: ferryd refuses to start")
		}
		if p.set["tls-client-ca"] != "" {
			errs.addf("--tls-client-ca without --tls-cert/--tls-key: ferryd refuses to start")
		}
		return
	}
	switch p.set["data-tls"] {
	case "follow", "required":
	case "off":
		errs.addf("--data-tls=off beside a TLS control plane: file contents and tickets cross the data channel in clear")
	default:
		errs.addf("--data-tls=%q: want required (or follow)", p.set["data-tls"])
	}
	var certSecret, keySecret string
	for _, flag := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
		file := p.set[flag]
		if file == "" {
			if flag != "tls-client-ca" {
				errs.addf("--%s is unset: TLS needs both --tls-cert and --tls-key", flag)
			}
			continue
		}
		secret, key, err := p.secretFile(file)
		if err != nil {
			errs.addf("--%s=%s: %v", flag, file, err)
			continue
		}
		want := map[string]string{"tls-cert": TLSCertKey, "tls-key": TLSPrivateKeyKey, "tls-client-ca": CACertKey}[flag]
		cert, inManifests := p.certificateFor(secret), p.m.Secret(secret) != nil
		switch {
		case inManifests:
			if !hasKey(p.m.Secret(secret), key) {
				errs.addf("--%s=%s: Secret %q has no key %q", flag, file, secret, key)
			}
		case cert == nil && len(p.m.Certificates()) > 0:
			errs.addf("--%s=%s: Secret %q is neither in the manifests nor issued by a cert-manager Certificate in them", flag, file, secret)
		case key != want:
			// From cert-manager, or (no Certificate in the manifests) a
			// kubernetes.io/tls Secret the operator provides: its keys.
			errs.addf("--%s=%s is key %q of Secret %q, which holds %s in a kubernetes.io/tls Secret; want key %q",
				flag, file, key, secret, describeKey(key), want)
		}
		switch flag {
		case "tls-cert":
			certSecret = secret
		case "tls-key":
			keySecret = secret
		}
	}
	if certSecret != "" && keySecret != "" && certSecret != keySecret {
		errs.addf("--tls-cert is from Secret %q but --tls-key from %q: a renewal replaces them apart", certSecret, keySecret)
	}
	if cert := p.certificateFor(certSecret); cert != nil {
		p.checkCertificate(errs, cert)
	}
}

func describeKey(key string) string {
	switch key {
	case TLSCertKey:
		return "the certificate chain"
	case TLSPrivateKeyKey:
		return "the private key"
	case CACertKey:
		return "the issuing CA"
	}
	return "nothing"
}

func hasKey(s *corev1.Secret, key string) bool {
	_, ok := secretData(s)[key]
	return ok
}

// secretFile finds the Secret volume mounted at file's directory and
// returns the Secret's name and the key file is. It reports a mount that
// is missing or writable, a volume that is not a Secret, and file modes
// ferryd cannot read.
func (p *pod) secretFile(file string) (secret, key string, err error) {
	dir, name := path.Split(path.Clean(file))
	m := p.mount(path.Clean(dir))
	if m == nil {
		return "", "", fmt.Errorf("nothing is mounted at %s", path.Clean(dir))
	}
	if !m.ReadOnly {
		return "", "", fmt.Errorf("%s must be mounted read-only", m.MountPath)
	}
	if m.SubPath != "" || m.SubPathExpr != "" {
		return "", "", fmt.Errorf("%s is mounted with a subPath: the kubelet never updates it, so renewals never arrive", m.MountPath)
	}
	v := p.volume(m.Name)
	if v == nil || v.Secret == nil {
		return "", "", fmt.Errorf("volume %q at %s is not a Secret", m.Name, m.MountPath)
	}
	s := v.Secret
	key, mode := name, s.DefaultMode
	if len(s.Items) > 0 {
		key = ""
		for _, it := range s.Items {
			if it.Path == name {
				key = it.Key
				if it.Mode != nil {
					mode = it.Mode
				}
			}
		}
		if key == "" {
			return "", "", fmt.Errorf("Secret volume %q lists items, none of them at %s", v.Name, name)
		}
	}
	// Secret files belong to root and to the pod's fsGroup (ferryd's
	// group): ferryd reads them through the group bits. 0644 by default.
	if mode != nil && *mode&0o044 == 0 {
		return "", "", fmt.Errorf("Secret volume %q gives mode %#o: neither ferryd's group (fsGroup %d) nor others may read it", v.Name, *mode, UID)
	}
	return s.SecretName, key, nil
}

func (p *pod) volume(name string) *corev1.Volume {
	for i, v := range p.sts.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &p.sts.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// certificateFor returns the Certificate in the manifests that issues
// the Secret called secret, or nil.
func (p *pod) certificateFor(secret string) *Certificate {
	for _, c := range p.m.Certificates() {
		if secret != "" && c.Spec.SecretName == secret && c.Namespace == p.sts.Namespace {
			return c
		}
	}
	return nil
}

// checkCertificate checks the certificate ferryd serves both channels
// with: a server certificate for the names clients dial. Clients verify
// the data channel against the control plane's name, not the pod IP an
// offer names, so no IP address is needed.
func (p *pod) checkCertificate(errs *problems, c *Certificate) {
	if c.Spec.IsCA {
		errs.addf("Certificate %q is a CA (isCA: true), not ferryd's serving certificate", c.Name)
	}
	if len(c.Spec.Usages) > 0 {
		for _, u := range []string{UsageServerAuth, UsageDigitalSignature} {
			if !slices.Contains(c.Spec.Usages, u) {
				errs.addf("Certificate %q usages %q lack %q: TLS clients refuse it as a server certificate", c.Name, c.Spec.Usages, u)
			}
		}
	}
	cert := &x509.Certificate{DNSNames: c.Spec.DNSNames}
	for _, name := range p.dialledNames() {
		// The client's own matching: a wildcard covers one label.
		if err := cert.VerifyHostname(name); err != nil {
			errs.addf("Certificate %q dnsNames %q do not cover %s, which clients dial", c.Name, c.Spec.DNSNames, name)
		}
	}
	ref := c.Spec.IssuerRef
	switch {
	case ref.Group != "" && ref.Group != CertManagerGroup:
		// an external issuer (step-ca, AWS PCA, ...): nothing to look at here
	case ref.Name == "":
		errs.addf("Certificate %q names no issuer", c.Name)
	case ref.Kind == "" || ref.Kind == "Issuer":
		if p.m.issuer("Issuer", ref.Name) == nil {
			errs.addf("Certificate %q is signed by Issuer %q, which the manifests do not create (a ClusterIssuer needs kind: ClusterIssuer)", c.Name, ref.Name)
		}
	case ref.Kind != "ClusterIssuer":
		errs.addf("Certificate %q issuerRef kind %q, want Issuer or ClusterIssuer", c.Name, ref.Kind)
	}
}

// dialledNames are the names clients and peers dial ferryd by: each
// ClusterIP Service's, and each pod's through the governing headless
// Service, with and without the cluster domain.
func (p *pod) dialledNames() []string {
	ns := p.sts.Namespace
	if ns == "" {
		ns = "default"
	}
	var names []string
	for _, s := range p.m.Services() {
		if s.Spec.ClusterIP != corev1.ClusterIPNone && p.selectsMap(s.Spec.Selector) {
			names = append(names, fmt.Sprintf("%s.%s.svc", s.Name, ns))
		}
	}
	replicas := int32(1)
	if r := p.sts.Spec.Replicas; r != nil {
		replicas = *r
	}
	for i := range replicas {
		names = append(names, fmt.Sprintf("%s-%d.%s.%s.svc", p.sts.Name, i, p.sts.Spec.ServiceName, ns))
	}
	for _, n := range slices.Clone(names) {
		names = append(names, n+"."+ClusterDomain)
	}
	return names
}

// checkIssuers checks that a CA Issuer's Secret comes from somewhere the
// manifests show: a CA Certificate of theirs, or a Secret in them.
func (p *pod) checkIssuers(errs *problems) {
	for _, i := range p.m.Issuers() {
		spec := i.Spec
		switch {
		case (spec.CA == nil) == (spec.SelfSigned == nil):
			errs.addf("%s %q must be exactly one of ca or selfSigned", i.Kind, i.Name)
		case spec.CA != nil && i.Kind == "Issuer":
			secret := spec.CA.SecretName
			c := p.certificateFor(secret)
			if c == nil && p.m.Secret(secret) == nil {
				errs.addf("Issuer %q signs with Secret %q, which neither a Certificate nor a Secret in the manifests provides", i.Name, secret)
			} else if c != nil && !c.Spec.IsCA {
				errs.addf("Issuer %q signs with Secret %q of Certificate %q, which is not a CA (isCA: false)", i.Name, secret, c.Name)
			}
		}
	}
	for _, c := range p.m.Certificates() {
		if strings.TrimSpace(c.Spec.SecretName) == "" {
			errs.addf("Certificate %q has no secretName", c.Name)
		}
	}
}
