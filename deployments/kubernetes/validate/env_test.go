package validate

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.0.0.7", "V6": "fd00::1", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"$(POD_IP)", "10.0.0.7"},
		{"$(POD_IP):7071", "10.0.0.7:7071"},
		{"[$(V6)]", "[fd00::1]"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(POD_IP)", "$(POD_IP)"},
		{"a$(EMPTY)b", "ab"},
		{"$(POD_IP", "$(POD_IP"},
		{"$(POD_IP$(V6)", "$(POD_IP$(V6)"},
		{"cost $5", "cost $5"},
		{"end$", "end$"},
		{"$(", "$("},
	} {
		if got := Expand(tc.in, lookup); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContainerEnvOrder(t *testing.T) {
	m := Manifests{&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
		Data:       map[string]string{"A": "from-config", "B": "b"},
	}}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		Env: []corev1.EnvVar{
			{Name: "EARLY", Value: "$(POD_IP)"}, // not defined yet: kept
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "LATE", Value: "$(POD_IP)/$(B)"},
			{Name: "A", Value: "from-env"},
		},
	}
	env, err := m.ContainerEnv(c, Downward{"status.podIP": "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=from-env", "B=b", "EARLY=$(POD_IP)", "POD_IP=10.0.0.7", "LATE=10.0.0.7/b"}
	if got := env.List(); !slices.Equal(got, want) {
		t.Errorf("ContainerEnv = %q, want %q", got, want)
	}
	c.EnvFrom[0].ConfigMapRef.Name = "missing"
	if _, err := m.ContainerEnv(c, Downward{"status.podIP": "10.0.0.7"}); err == nil {
		t.Error("ContainerEnv(envFrom a missing ConfigMap) = nil error")
	}
}
