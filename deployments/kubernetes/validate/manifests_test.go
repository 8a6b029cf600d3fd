package validate

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestManifests renders the base and every overlay, decodes each object
// strictly and runs every check on it.
func TestManifests(t *testing.T) {
	for _, dir := range renderDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := render(t, dir)
			for _, err := range Check(m) {
				t.Error(err)
			}
		})
	}
}

// TestOverlays checks what every overlay must add to the base: a
// namespace for every object and a pinned image.
func TestOverlays(t *testing.T) {
	for _, dir := range renderDirs(t)[1:] {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := render(t, dir)
			for _, o := range m {
				if _, isNS := o.(*corev1.Namespace); !isNS && o.GetNamespace() == "" {
					t.Errorf("%T %q has no namespace", o, o.GetName())
				}
			}
			_, c, err := m.Ferryd()
			if err != nil {
				t.Fatal(err)
			}
			if !pinned(c.Image) {
				t.Errorf("image %q is not pinned to a tag or digest", c.Image)
			}
		})
	}
}

func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	_, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	return ok && tag != "" && tag != "latest"
}

func TestExampleOverlay(t *testing.T) {
	m := render(t, filepath.Join("..", "overlays", "example"))
	sts, c, err := m.Ferryd()
	if err != nil {
		t.Fatal(err)
	}
	if sts.Namespace != "ferry-example" || sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
		t.Errorf("StatefulSet %s/%s replicas %v, want ferry-example/ferry with 3", sts.Namespace, sts.Name, deref(sts.Spec.Replicas))
	}
	if c.Image != "ghcr.io/ferrydev/ferryd:v0.1.0" {
		t.Errorf("image = %q, want ghcr.io/ferrydev/ferryd:v0.1.0", c.Image)
	}
	got := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	if want := resource.MustParse("20Gi"); got.Cmp(want) != 0 {
		t.Errorf("data volume = %s, want %s", got.String(), want.String())
	}
	ns := m.namespace("ferry-example")
	if ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace ferry-example missing or not enforcing the restricted Pod Security Standard: %v", ns)
	}
}

func (m Manifests) namespace(name string) *corev1.Namespace { return named[*corev1.Namespace](m, name) }
