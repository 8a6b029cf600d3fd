package validate

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Kustomize renders the kustomization in dir with `kubectl kustomize`.
func Kustomize(ctx context.Context, dir string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "kubectl", "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w: %s", dir, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Manifests is one rendering: the decoded objects, in kustomize's order.
type Manifests []Object

// Render renders dir and decodes the result strictly.
func Render(ctx context.Context, dir string) (Manifests, error) {
	out, err := Kustomize(ctx, dir)
	if err != nil {
		return nil, err
	}
	return DecodeAll(out)
}

// all returns the objects of type T.
func all[T Object](m Manifests) []T {
	var got []T
	for _, o := range m {
		if t, ok := o.(T); ok {
			got = append(got, t)
		}
	}
	return got
}

// named returns the object of type T called name, or nil.
func named[T Object](m Manifests, name string) T {
	var zero T
	for _, o := range all[T](m) {
		if o.GetName() == name {
			return o
		}
	}
	return zero
}

// StatefulSet returns the one StatefulSet.
func (m Manifests) StatefulSet() (*appsv1.StatefulSet, error) {
	s := all[*appsv1.StatefulSet](m)
	if len(s) != 1 {
		return nil, fmt.Errorf("want exactly one StatefulSet, got %d", len(s))
	}
	return s[0], nil
}

// Ferryd returns the StatefulSet and its container named ferryd.
func (m Manifests) Ferryd() (*appsv1.StatefulSet, *corev1.Container, error) {
	sts, err := m.StatefulSet()
	if err != nil {
		return nil, nil, err
	}
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "ferryd" {
			return sts, c, nil
		}
	}
	return nil, nil, fmt.Errorf("StatefulSet %q has no container named ferryd", sts.Name)
}

// Services returns the Services.
func (m Manifests) Services() []*corev1.Service { return all[*corev1.Service](m) }

// ConfigMap returns the ConfigMap called name, or nil.
func (m Manifests) ConfigMap(name string) *corev1.ConfigMap {
	return named[*corev1.ConfigMap](m, name)
}

// Secret returns the Secret called name, or nil.
func (m Manifests) Secret(name string) *corev1.Secret { return named[*corev1.Secret](m, name) }

// ServiceAccount returns the ServiceAccount called name, or nil.
func (m Manifests) ServiceAccount(name string) *corev1.ServiceAccount {
	return named[*corev1.ServiceAccount](m, name)
}

// PodDisruptionBudgets returns the PodDisruptionBudgets.
func (m Manifests) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget {
	return all[*policyv1.PodDisruptionBudget](m)
}

// NetworkPolicies returns the NetworkPolicies.
func (m Manifests) NetworkPolicies() []*networkingv1.NetworkPolicy {
	return all[*networkingv1.NetworkPolicy](m)
}
