package validate

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// TestSmokeStatefulSetPod starts the image's ferryd with exactly the args
// and env each rendered StatefulSet gives it (Downward API values
// substituted, listen ports made free, --root a temporary directory),
// probes it as the kubelet would, checks the data address it offers, and
// stops it as the kubelet would. The IPv6 run keeps the manifest's listen
// host, to show an IPv6 pod IP is served and advertised in brackets.
func TestSmokeStatefulSetPod(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ferryd")
	}
	bin := ferrydBinary(t)
	for _, dir := range renderDirs(t) {
		m := render(t, dir)
		t.Run(filepath.Base(dir)+"/ipv4", func(t *testing.T) {
			for _, err := range smoke(t, bin, m, "127.0.0.1", loopback) {
				t.Error(err)
			}
		})
		t.Run(filepath.Base(dir)+"/ipv6", func(t *testing.T) {
			if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			} else {
				ln.Close()
			}
			for _, err := range smoke(t, bin, m, "::1", func(host string) string { return host }) {
				t.Error(err)
			}
		})
	}
}

func loopback(string) string { return "127.0.0.1" }

// TestSmokeCatchesMistakes runs the smoke test on broken manifests and
// expects it to object.
func TestSmokeCatchesMistakes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ferryd")
	}
	bin := ferrydBinary(t)
	good := render(t, filepath.Join("..", "base"))
	for _, tc := range []struct {
		name   string
		break_ func(*corev1.Container)
		want   string
	}{
		{"unknown health service", func(c *corev1.Container) { c.ReadinessProbe.GRPC.Service = ptr("ferry.v1.Unknown") }, "readiness probe = UNKNOWN"},
		{"advertise before POD_IP", func(c *corev1.Container) { c.Env[0], c.Env[1] = c.Env[1], c.Env[0] }, `--advertise-data "$(POD_IP)"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(good)
			_, c, err := m.Ferryd()
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(c)
			errs := smoke(t, bin, m, "127.0.0.1", loopback)
			t.Log(errs)
			if !strings.Contains(fmt.Sprint(errs), tc.want) {
				t.Errorf("smoke(%s) = %v, want an error mentioning %q", tc.name, errs, tc.want)
			}
		})
	}
}

// smoke runs one pod and returns what went wrong; it stops the test only
// when it cannot go on.
func smoke(t *testing.T, bin string, m Manifests, podIP string, listenHost func(string) string) []error {
	sts, c, err := m.Ferryd()
	if err != nil {
		t.Fatal(err)
	}
	env, err := m.ContainerEnv(c, Downward{
		"status.podIP": podIP, "metadata.name": sts.Name + "-0", "metadata.namespace": sts.Namespace,
	})
	if err != nil {
		t.Fatal(err)
	}
	args := ExpandAll(c.Args, env)
	set, err := Resolve(args, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"listen", "data-listen"} {
		host, _, _ := net.SplitHostPort(set[name])
		args, err = SetFlag(args, env, name, net.JoinHostPort(listenHost(host), "0"))
		if err != nil {
			t.Fatal(err)
		}
	}
	if args, err = SetFlag(args, env, "root", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Logf("ferryd %s\nenv %q", strings.Join(args, " "), env.List())

	p := startFerryd(t, bin, args, append([]string{"HOSTNAME=" + sts.Name + "-0"}, env.List()...))
	grpcAddr, dataAddr, err := p.serving(t)
	if err != nil {
		return problems{err}
	}
	_, listenPort, _ := net.SplitHostPort(set["listen"])
	target := func(port int32) string { // the pod's port -> where ferryd listens here
		if strconv.Itoa(int(port)) != listenPort {
			t.Fatalf("probe port %d is not ferryd's --listen port %s", port, listenPort)
		}
		_, actual, _ := net.SplitHostPort(grpcAddr)
		return net.JoinHostPort(podIP, actual)
	}
	var errs problems
	for name, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if got := probe(t, target(pr.GRPC.Port), pr); got != healthpb.HealthCheckResponse_SERVING {
			errs.addf("%s probe = %v, want SERVING", name, got)
		}
	}
	_, dataPort, _ := net.SplitHostPort(dataAddr)
	if got, want := offeredAddress(t, target(c.ReadinessProbe.GRPC.Port)), net.JoinHostPort(podIP, dataPort); got != want {
		errs.addf("GetCapabilities data_address = %q, want %q (this pod's IP and data port)", got, want)
	}
	grace, err := set.Duration("shutdown-grace")
	if err != nil {
		t.Fatal(err)
	}
	terminate(t, &errs, p, target(c.ReadinessProbe.GRPC.Port), c, sts.Spec.Template.Spec.TerminationGracePeriodSeconds, grace)
	return errs
}
