package validate

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var tlsOverlay = filepath.Join("..", "overlays", "tls")

// TestTLSOverlay checks what the tls overlay promises beyond Check: TLS
// on both channels that cannot be turned off by ferry-config, and probes
// that never go to the TLS port.
func TestTLSOverlay(t *testing.T) {
	m := render(t, tlsOverlay)
	for _, err := range tlsOverlayProblems(m) {
		t.Error(err)
	}
}

// tlsOverlayProblems: the tls overlay's own promises.
func tlsOverlayProblems(m Manifests) []error {
	var errs problems
	sts, c, err := m.Ferryd()
	if err != nil {
		return []error{err}
	}
	p := &pod{m: m, sts: sts, c: c}
	if p.set, err = p.settings(placeholderIP4); err != nil {
		return []error{err}
	}
	if ns := m.namespace("ferry-tls"); sts.Namespace != "ferry-tls" || ns == nil ||
		ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		errs.addf("StatefulSet in %q, want ferry-tls, a namespace enforcing the restricted Pod Security Standard", sts.Namespace)
	}
	// In args, so that FERRY_* in ferry-config cannot override them.
	args, err := Resolve(c.Args, &Env{})
	if err != nil {
		return []error{err}
	}
	for flag, want := range map[string]string{"data-tls": "required", "tls-cert": "/etc/ferry/tls/tls.crt", "tls-key": "/etc/ferry/tls/tls.key"} {
		if args[flag] != want || p.set[flag] != want {
			errs.addf("--%s: args give %q, ferryd runs with %q; want %q in args", flag, args[flag], p.set[flag], want)
		}
	}
	if args["health-listen"] == "" {
		errs.addf("no --health-listen in args")
	}
	health, grpc := p.containerPort("health"), p.containerPort("grpc")
	for kind, pr := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		switch {
		case pr == nil || pr.GRPC == nil:
			errs.addf("%s is not a gRPC probe", kind)
		case grpc == nil || pr.GRPC.Port == grpc.ContainerPort:
			errs.addf("%s is a plaintext probe against the TLS control plane", kind)
		case health == nil || pr.GRPC.Port != health.ContainerPort:
			errs.addf("%s probes port %d, not the health port", kind, pr.GRPC.Port)
		}
	}
	if c.StartupProbe != nil {
		errs.addf("startupProbe: check it goes to the health port too")
	}
	secret, _, err := p.secretFile(p.set["tls-cert"])
	switch cert := p.certificateFor(secret); {
	case err != nil:
		errs.addf("--tls-cert: %v", err)
	case cert == nil:
		errs.addf("no cert-manager Certificate issues Secret %q, which ferryd's certificate comes from", secret)
	}
	return errs
}

// TestTLSCheckCatchesMistakes breaks the rendered tls overlay one way at a
// time and expects Check or the overlay's own test to say so.
func TestTLSCheckCatchesMistakes(t *testing.T) {
	good := render(t, tlsOverlay)
	if err := CheckAll(good); err != nil {
		t.Fatalf("the unbroken overlay fails: %v", err)
	}
	if errs := tlsOverlayProblems(good); len(errs) > 0 {
		t.Fatalf("the unbroken overlay fails: %v", errs)
	}
	type breaker = func(*appsv1.StatefulSet, *corev1.Container, Manifests)
	for _, tc := range []struct {
		name   string
		break_ breaker
		want   string
	}{
		{"readiness on the TLS port", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.ReadinessProbe.GRPC.Port = 7070
		}, "readinessProbe probes port 7070, the TLS control plane"},
		{"liveness on the data port", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.LivenessProbe.GRPC.Port = 7071
		}, "livenessProbe probes port 7071, not the port named health"},
		{"TLS probe mode", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.ReadinessProbe.GRPC.Mode = ptr(corev1.GRPCProbeModeTLS)
		}, "readinessProbe mode TLS: the probes must be plaintext"},
		{"no health listener", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = withoutArg(c.Args, "--health-listen")
		}, "no --health-listen"},
		{"health listener on loopback", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--health-listen", "127.0.0.1:7072")
		}, "--health-listen=\"127.0.0.1:7072\""},
		{"health port and flag apart", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--health-listen", "0.0.0.0:7073")
		}, "container port health is 7072"},
		{"data channel in clear", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--data-tls", "off")
		}, "--data-tls=off"},
		{"data TLS only followed", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--data-tls", "follow")
		}, "--data-tls: args give \"follow\""},
		{"TLS from the ConfigMap", func(_ *appsv1.StatefulSet, c *corev1.Container, m Manifests) {
			c.Args = withoutArg(c.Args, "--tls-cert")
			all[*corev1.ConfigMap](m)[0].Data["FERRY_TLS_CERT"] = "/etc/ferry/tls/tls.crt"
		}, "--tls-cert: args give \"\""},
		{"no TLS but required", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = withoutArg(withoutArg(c.Args, "--tls-cert"), "--tls-key")
		}, "--data-tls=required without --tls-cert"},
		{"key outside any mount", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--tls-key", "/etc/ferry/tls.key")
		}, "nothing is mounted at /etc/ferry"},
		{"key in the token Secret", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(c.Args, "--tls-key", "/etc/ferry/secrets/tls.key")
		}, "has no key \"tls.key\""},
		{"certificate and key swapped", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			c.Args = setArg(setArg(c.Args, "--tls-key", "/etc/ferry/tls/tls.crt"), "--tls-cert", "/etc/ferry/tls/tls.key")
		}, "which holds the private key in a kubernetes.io/tls Secret"},
		{"TLS Secret writable", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			tlsMount(c).ReadOnly = false
		}, "/etc/ferry/tls must be mounted read-only"},
		{"TLS Secret through subPath", func(_ *appsv1.StatefulSet, c *corev1.Container, _ Manifests) {
			tlsMount(c).SubPath = "tls.crt"
		}, "renewals never arrive"},
		{"key unreadable for ferryd", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			tlsVolume(s).Secret.DefaultMode = ptr(int32(0o400))
		}, "neither ferryd's group"},
		{"TLS volume an emptyDir", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			tlsVolume(s).VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		}, "is not a Secret"},
		{"Secret nobody issues", func(s *appsv1.StatefulSet, _ *corev1.Container, _ Manifests) {
			tlsVolume(s).Secret.SecretName = "ferry-tls-typo"
		}, "Secret \"ferry-tls-typo\" is neither in the manifests nor issued"},
		{"names of another namespace", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			c := serving(m)
			for i, n := range c.Spec.DNSNames {
				c.Spec.DNSNames[i] = strings.ReplaceAll(n, ".ferry-tls.", ".ferry-example.")
			}
		}, "do not cover ferry.ferry-tls.svc"},
		{"no headless names", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			c := serving(m)
			c.Spec.DNSNames = slices.DeleteFunc(c.Spec.DNSNames, func(n string) bool { return strings.Contains(n, "headless") })
		}, "do not cover ferry-2.ferry-headless.ferry-tls.svc.cluster.local"},
		{"a wildcard one label too deep", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			serving(m).Spec.DNSNames = []string{"ferry.ferry-tls.svc", "ferry.ferry-tls.svc.cluster.local", "*.ferry-tls.svc.cluster.local"}
		}, "do not cover ferry-0.ferry-headless.ferry-tls.svc.cluster.local"},
		{"client certificate", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			serving(m).Spec.Usages = []string{"client auth", "digital signature"}
		}, "lack \"server auth\""},
		{"serving a CA", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			serving(m).Spec.IsCA = true
		}, "is a CA"},
		{"issuer misspelt", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			serving(m).Spec.IssuerRef.Name = "ferry-ca-typo"
		}, "Issuer \"ferry-ca-typo\", which the manifests do not create"},
		{"CA issuer over a leaf", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			m.issuer("Issuer", "ferry-ca").Spec.CA.SecretName = "ferry-tls"
		}, "which is not a CA"},
		{"health port behind a Service", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			s := service(m, "ferry-headless")
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "health", Port: 7072, TargetPort: intstr.FromString("health")})
		}, "exposes the plaintext health port"},
		{"policy admits the health port", func(_ *appsv1.StatefulSet, _ *corev1.Container, m Manifests) {
			np := all[*networkingv1.NetworkPolicy](m)[0]
			np.Spec.Ingress[0].Ports = append(np.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: ptr(intstr.FromInt32(7072))})
		}, "admits port 7072"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(good)
			sts, c, err := m.Ferryd()
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(sts, c, m)
			errs := append(Check(m), tlsOverlayProblems(m)...)
			t.Log(errs)
			if got := fmt.Sprint(errs); !strings.Contains(got, tc.want) {
				t.Errorf("Check(%s) = %v, want an error mentioning %q", tc.name, got, tc.want)
			}
		})
	}
}

// TestTLSOperatorSecret: without cert-manager, the operator provides a
// kubernetes.io/tls Secret; the checks then hold its keys to that type's
// names, and the smoke run issues the certificate for the names clients
// dial.
func TestTLSOperatorSecret(t *testing.T) {
	m := slices.DeleteFunc(render(t, tlsOverlay), func(o Object) bool {
		_, cert := o.(*Certificate)
		_, issuer := o.(*Issuer)
		return cert || issuer
	})
	if err := CheckAll(m); err != nil {
		t.Errorf("the overlay without cert-manager's objects: %v", err)
	}
	broken := deepCopy(m)
	_, c, err := broken.Ferryd()
	if err != nil {
		t.Fatal(err)
	}
	c.Args = setArg(c.Args, "--tls-key", "/etc/ferry/tls/server.key")
	if err := CheckAll(broken); err == nil || !strings.Contains(err.Error(), `want key "tls.key"`) {
		t.Errorf("Check(key not named tls.key) = %v, want it refused", err)
	}
	if testing.Short() {
		return
	}
	for _, err := range smoke(t, ferrydBinary(t), m, "127.0.0.1", loopback) {
		t.Error(err)
	}
}

// setArg replaces --name=... in args, which must hold it.
func setArg(args []string, name, value string) []string {
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, name+"=") })
	if i < 0 {
		panic("no " + name + " in args")
	}
	args = slices.Clone(args)
	args[i] = name + "=" + value
	return args
}

func withoutArg(args []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, name+"=") })
}

func tlsMount(c *corev1.Container) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == "/etc/ferry/tls" {
			return &c.VolumeMounts[i]
		}
	}
	panic("nothing mounted at /etc/ferry/tls")
}

func tlsVolume(s *appsv1.StatefulSet) *corev1.Volume {
	for i, v := range s.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "ferry-tls" {
			return &s.Spec.Template.Spec.Volumes[i]
		}
	}
	panic("no volume of Secret ferry-tls")
}

// serving returns the Certificate ferryd serves with.
func serving(m Manifests) *Certificate {
	for _, c := range m.Certificates() {
		if c.Spec.SecretName == "ferry-tls" {
			return c
		}
	}
	panic("no Certificate issues ferry-tls")
}

// TestSmokeMutualTLS runs the tls overlay with mutual TLS, as its README
// section suggests (--tls-client-ca, the CA cert-manager puts beside the
// certificate): the probes still pass, clients need a certificate.
func TestSmokeMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ferryd")
	}
	bin := ferrydBinary(t)
	m := render(t, tlsOverlay)
	_, c, err := m.Ferryd()
	if err != nil {
		t.Fatal(err)
	}
	c.Args = append(c.Args, "--tls-client-ca=/etc/ferry/tls/ca.crt")
	if err := CheckAll(m); err != nil {
		t.Fatal(err)
	}
	for _, err := range smoke(t, bin, m, "127.0.0.1", loopback) {
		t.Error(err)
	}
}

// TestSmokeCatchesTLSMistakes breaks the tls overlay in ways that start
// ferryd but leave the pod unready, or its clients unable to connect,
// and expects the smoke test to object.
func TestSmokeCatchesTLSMistakes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ferryd")
	}
	bin := ferrydBinary(t)
	good := render(t, tlsOverlay)
	for _, tc := range []struct {
		name   string
		break_ func(*corev1.Container, Manifests)
		want   string
	}{
		{"readiness on the TLS port", func(c *corev1.Container, _ Manifests) { c.ReadinessProbe.GRPC.Port = 7070 }, "readiness probe = UNKNOWN"},
		{"no health listener", func(c *corev1.Container, _ Manifests) {
			c.Args = withoutArg(c.Args, "--health-listen")
		}, "liveness probe port 7072 is neither"},
		{"data channel in clear", func(c *corev1.Container, _ Manifests) { c.Args = setArg(c.Args, "--data-tls", "off") }, "TLS handshake on the data channel"},
		{"certificate flags lost", func(c *corev1.Container, _ Manifests) {
			c.Args = withoutArg(withoutArg(c.Args, "--tls-cert"), "--tls-key")
		}, "exited before serving (exit status 2): ferryd: --data-tls required"},
		{"headless names missing", func(_ *corev1.Container, m Manifests) {
			serving(m).Spec.DNSNames = []string{"ferry.ferry-tls.svc"}
		}, "health Check over TLS"},
		{"client certificate only", func(_ *corev1.Container, m Manifests) {
			serving(m).Spec.Usages = []string{"client auth", "digital signature"}
		}, "incompatible key usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(good)
			_, c, err := m.Ferryd()
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(c, m)
			errs := smoke(t, bin, m, "127.0.0.1", loopback)
			t.Log(errs)
			if !strings.Contains(fmt.Sprint(errs), tc.want) {
				t.Errorf("smoke(%s) = %v, want an error mentioning %q", tc.name, errs, tc.want)
			}
		})
	}
}
