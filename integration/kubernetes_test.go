package integration

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// The Kubernetes manifests and the Dockerfile are checked by a nested
// module (deployments/kubernetes/validate) so that k8s.io/api stays out of
// Ferry's go.mod. This runs it, so the README's one test command covers it.
func TestKubernetesManifests(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl (with kustomize) is needed to render the manifests: ", err)
	}
	cmd := exec.Command("go", "test", "-count=1", "./...")
	cmd.Dir = filepath.Join(repoRoot, "deployments", "kubernetes", "validate")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in %s: %v\n%s", cmd.Dir, err, out)
	}
	t.Logf("%s", out)
}
