package validate

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
`

func TestDecodeAcceptsValidObject(t *testing.T) {
	obj, err := Decode([]byte(deployment))
	if err != nil {
		t.Fatalf("Decode(valid Deployment) = %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Errorf("Decode(valid Deployment) = %#v", obj)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown field", "image: nginx:1.27", "image: nginx:1.27\n          imagePullPolcy: Always", "imagePullPolcy"},
		{"field in the wrong case", "- containerPort: 80", "- ContainerPort: 80", "ContainerPort"},
		{"wrong type", "replicas: 2", "replicas: two", "replicas"},
		{"duplicate key", "replicas: 2", "replicas: 2\n  replicas: 3", "replicas"},
		{"unknown kind", "kind: Deployment", "kind: CronJob", "unknown kind"},
		{"kind in the wrong group", "apiVersion: apps/v1", "apiVersion: extensions/v1beta1", "unknown kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(deployment, tc.old, tc.new, 1)
			if doc == deployment {
				t.Fatalf("mutation %q not applied", tc.old)
			}
			_, err := Decode([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestDecodeAllSplitsDocuments(t *testing.T) {
	stream := "---\n" + deployment + "---\n\n---\n" + deployment
	objs, err := DecodeAll([]byte(stream))
	if err != nil || len(objs) != 2 {
		t.Fatalf("DecodeAll(2 documents) = %d objects, %v; want 2, nil", len(objs), err)
	}
	bad := deployment + "---\n" + strings.Replace(deployment, "replicas: 2", "replica: 2", 1)
	if _, err := DecodeAll([]byte(bad)); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("DecodeAll(bad second document) = %v, want an error naming document 1", err)
	}
}

const certificate = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web-tls
spec:
  secretName: web-tls
  duration: 2160h
  usages:
    - server auth
  dnsNames:
    - web.default.svc
  issuerRef:
    name: ca
`

// TestDecodeCertManager: cert-manager's kinds decode into the local
// types, as strictly as the k8s.io/api ones.
func TestDecodeCertManager(t *testing.T) {
	obj, err := Decode([]byte(certificate))
	if err != nil {
		t.Fatalf("Decode(valid Certificate) = %v", err)
	}
	c, ok := obj.(*Certificate)
	if !ok || c.Spec.SecretName != "web-tls" || c.Spec.Duration.Duration.Hours() != 2160 || c.Spec.DNSNames[0] != "web.default.svc" {
		t.Errorf("Decode(valid Certificate) = %#v", obj)
	}
	if cp := c.DeepCopyObject().(*Certificate); cp == c || cp.Spec.DNSNames[0] != "web.default.svc" {
		t.Errorf("DeepCopyObject = %#v", cp)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"misspelt field", "dnsNames:", "dnsName:", "dnsName"},
		{"field in the wrong case", "secretName:", "secretname:", "secretname"},
		{"bad duration", "duration: 2160h", "duration: 90 days", "duration"},
		{"wrong type", "- server auth", "server auth: true", "usages"},
		{"unmodelled issuer", "kind: Certificate", "kind: Issuer", "dnsNames"},
		{"unknown kind", "kind: Certificate", "kind: CertificateRequestPolicy", "unknown kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(certificate, tc.old, tc.new, 1)
			if doc == certificate {
				t.Fatalf("mutation %q not applied", tc.old)
			}
			_, err := Decode([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
	issuer := "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: ca}\nspec:\n  ca: {secretName: ca}\n"
	if obj, err := Decode([]byte(issuer)); err != nil || obj.(*Issuer).Spec.CA.SecretName != "ca" {
		t.Errorf("Decode(CA ClusterIssuer) = %#v, %v", obj, err)
	}
	if _, err := Decode([]byte(strings.Replace(issuer, "ca: {secretName: ca}", "acme: {server: x}", 1))); err == nil {
		t.Error("Decode(ACME Issuer) = nil error, want unknown field acme (not modelled)")
	}
}
