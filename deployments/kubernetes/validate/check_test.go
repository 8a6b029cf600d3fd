package validate

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestCheckCatchesMistakes breaks the rendered example overlay one way at
// a time and expects Check to say so: every check can fail.
func TestCheckCatchesMistakes(t *testing.T) {
	good := render(t, filepath.Join("..", "overlays", "example"))
	if err := CheckAll(good); err != nil {
		t.Fatalf("the unbroken overlay fails: %v", err)
	}
	for _, tc := range []struct {
		name   string
		break_ func(*appsv1.StatefulSet, *corev1.Container, Manifests)
		want   string
	}{
		{"writable root", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "readOnlyRootFilesystem"},
		{"privilege escalation", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.SecurityContext.AllowPrivilegeEscalation = nil
		}, "allowPrivilegeEscalation"},
		{"capabilities kept", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}
		}, "drop ALL"},
		{"root user", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.SecurityContext.RunAsUser = ptr(int64(0))
		}, "runAsUser"},
		{"no seccomp", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}, "RuntimeDefault"},
		{"token mounted", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken"},
		{"service links", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.EnableServiceLinks = ptr(true)
		}, "enableServiceLinks"},
		{"loopback listen", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = []string{"--root=/data", "--data-listen=0.0.0.0:7071"}
		}, "--listen"},
		{"unknown flag", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = append(c.Args, "--tls-crt=/etc/ferry/secrets/tls.crt") // a misspelt --tls-cert
		}, "no flag"},
		{"pulls from loopback only", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			all[*corev1.ConfigMap](m)[0].Data["FERRY_ALLOW_PULL"] = "true"
		}, "--allow-pull without --allow-peer"},
		{"misspelt config key", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			all[*corev1.ConfigMap](m)[0].Data["FERRY_SHUTDOWN_GRACEE"] = "20s"
		}, "FERRY_SHUTDOWN_GRACEE"},
		{"probe on the data port", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.ReadinessProbe.GRPC.Port = 7071
		}, "readinessProbe probes port 7071"},
		{"tcp liveness", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.LivenessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(7070)}
		}, "livenessProbe must be a native gRPC probe"},
		{"unknown health service", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.ReadinessProbe.GRPC.Service = ptr("ferry")
		}, "health service"},
		{"port and flag apart", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Ports[0].ContainerPort = 8080
		}, "container port grpc is 8080"},
		{"advertise before POD_IP", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Env[0], c.Env[1] = c.Env[1], c.Env[0]
		}, "advertises \"$(POD_IP)\""},
		{"advertise host IP", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Env[0].ValueFrom.FieldRef.FieldPath = "status.hostIP"
		}, "status.podIP"},
		{"IPv6-unsafe advertise", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Env[1].Value = "$(POD_IP):7071"
		}, "with pod IP 2001:db8::10"},
		{"short termination grace", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(25))
		}, "terminationGracePeriodSeconds"},
		{"preStop exec", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}
		}, "no shell"},
		{"secret required", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			s.Spec.Template.Spec.Volumes[0].Secret.Optional = nil
		}, "optional"},
		{"secret writable", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.VolumeMounts[1].ReadOnly = false
		}, "read-only"},
		{"no memory limit", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			delete(c.Resources.Limits, corev1.ResourceMemory)
		}, "memory limit"},
		{"command replaces entrypoint", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Command = []string{"/ferryd"}
		}, "ENTRYPOINT"},
		{"headless gets an IP", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			service(m, "ferry-headless").Spec.ClusterIP = ""
		}, "clusterIP: None"},
		{"not-ready pods published", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			service(m, "ferry-headless").Spec.PublishNotReadyAddresses = true
		}, "not ready"},
		{"data port load-balanced", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			s := service(m, "ferry")
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "data", Port: 7071, TargetPort: intstr.FromString("data")})
		}, "exposes the data port"},
		{"no appProtocol", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			service(m, "ferry").Spec.Ports[0].AppProtocol = nil
		}, "appProtocol"},
		{"selector misses pods", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			service(m, "ferry").Spec.Selector = map[string]string{"app": "other"}
		}, "does not select"},
		{"policy misses data port", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			np := all[*networkingv1.NetworkPolicy](m)[0]
			np.Spec.Ingress[0].Ports = np.Spec.Ingress[0].Ports[:1]
		}, "port data"},
		{"policy open to all", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			all[*networkingv1.NetworkPolicy](m)[0].Spec.Ingress[0].From = nil
		}, "from anywhere"},
		{"policy without peers", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			np := all[*networkingv1.NetworkPolicy](m)[0]
			np.Spec.Ingress[0].From = np.Spec.Ingress[0].From[:1]
		}, "from ferry's pods"},
		{"template labels drift", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			all[*appsv1.StatefulSet](m)[0].Spec.Template.Labels["app.kubernetes.io/component"] = "x"
		}, "PodDisruptionBudget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(good)
			sts, c, err := m.Ferryd()
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(sts, c, m)
			err = CheckAll(m)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}

func deepCopy(m Manifests) Manifests {
	out := make(Manifests, len(m))
	for i, o := range m {
		out[i] = o.DeepCopyObject().(Object)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
