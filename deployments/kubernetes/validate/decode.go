package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is a decoded Kubernetes object: *appsv1.StatefulSet and friends.
type Object interface {
	runtime.Object
	metav1.Object
}

// kinds are the object types the manifests may contain; anything else is
// an error, so a new kind needs a line here and a check.
var kinds = map[schema.GroupVersionKind]func() Object{
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"):           func() Object { return new(appsv1.StatefulSet) },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):            func() Object { return new(appsv1.Deployment) },
	corev1.SchemeGroupVersion.WithKind("Service"):               func() Object { return new(corev1.Service) },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):             func() Object { return new(corev1.ConfigMap) },
	corev1.SchemeGroupVersion.WithKind("Secret"):                func() Object { return new(corev1.Secret) },
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):        func() Object { return new(corev1.ServiceAccount) },
	corev1.SchemeGroupVersion.WithKind("Namespace"):             func() Object { return new(corev1.Namespace) },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): func() Object { return new(policyv1.PodDisruptionBudget) },
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):   func() Object { return new(networkingv1.NetworkPolicy) },
	// cert-manager's, with local types (certmanager.go)
	certManagerV1.WithKind("Certificate"):   func() Object { return new(Certificate) },
	certManagerV1.WithKind("Issuer"):        func() Object { return new(Issuer) },
	certManagerV1.WithKind("ClusterIssuer"): func() Object { return new(Issuer) },
}

// Decode decodes one YAML document strictly into the k8s.io/api type its
// apiVersion and kind name. Duplicate keys, unknown fields (matched case
// sensitively, as the API server does; encoding/json would accept
// "ContainerPort" for "containerPort"), wrong types and unknown kinds are
// errors.
func Decode(doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, err
	}
	gvk := tm.GroupVersionKind()
	newObj, ok := kinds[gvk]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q of apiVersion %q", tm.Kind, tm.APIVersion)
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	if err := errors.Join(strict...); err != nil {
		return nil, fmt.Errorf("%s %q: %w", gvk.Kind, obj.GetName(), err)
	}
	return obj, nil
}

// DecodeAll splits a multi-document YAML stream and decodes each document.
func DecodeAll(stream []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, err := Decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		objs = append(objs, obj)
	}
}
