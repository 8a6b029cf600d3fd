package validate

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
// when it cannot go on. A rendering that serves TLS gets its Secret
// mounts stood in for by temporary directories holding certificates of a
// test CA (stageTLS), and is checked the way its clients meet it too.
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
	for _, name := range []string{"listen", "data-listen", "health-listen"} {
		if set[name] == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(set[name])
		args, err = SetFlag(args, env, name, net.JoinHostPort(listenHost(host), "0"))
		if err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, smokeFile), []byte(smokeContent), 0o644); err != nil {
		t.Fatal(err)
	}
	if args, err = SetFlag(args, env, "root", root); err != nil {
		t.Fatal(err)
	}
	var pki *testPKI
	if pd := (&pod{m: m, sts: sts, c: c, set: set}); pd.tls() {
		pki, args = stageTLS(t, pd, args, env)
	}
	t.Logf("ferryd %s\nenv %q", strings.Join(args, " "), env.List())

	p := startFerryd(t, bin, args, append([]string{"HOSTNAME=" + sts.Name + "-0"}, env.List()...))
	addrs, err := p.serving(t)
	if err != nil {
		return problems{err}
	}
	// The pod's ports -> where ferryd listens here.
	ports := map[string]string{portOf(set["listen"]): addrs.grpc}
	if set["health-listen"] != "" {
		ports[portOf(set["health-listen"])] = addrs.health
	}
	var errs problems
	target := func(port int32) string { // "" when ferryd serves no gRPC there
		if addr := ports[strconv.Itoa(int(port))]; addr != "" {
			return net.JoinHostPort(podIP, portOf(addr))
		}
		return ""
	}
	for name, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if target(pr.GRPC.Port) == "" {
			errs.addf("%s probe port %d is neither ferryd's --listen nor its --health-listen port", name, pr.GRPC.Port)
		} else if got := probe(t, target(pr.GRPC.Port), pr); got != healthpb.HealthCheckResponse_SERVING {
			errs.addf("%s probe = %v, want SERVING", name, got)
		}
	}
	grpcAddr := net.JoinHostPort(podIP, portOf(addrs.grpc))
	ctl := dial(t, grpcAddr)
	if pki != nil {
		ctl = dialWith(t, grpcAddr, credentials.NewTLS(pki.clientTLS(pki.ctlName)))
		smokeTLS(t, &errs, pki, grpcAddr, net.JoinHostPort(podIP, portOf(addrs.data)))
	}
	if got, err := offeredAddress(t, ctl); err != nil {
		errs.addf("%v", err)
	} else if want := net.JoinHostPort(podIP, portOf(addrs.data)); got != want {
		errs.addf("GetCapabilities data_address = %q, want %q (this pod's IP and data port)", got, want)
	}
	if pki != nil {
		smokePull(t, &errs, pki, grpcAddr)
	}
	grace, err := set.Duration("shutdown-grace")
	if err != nil {
		t.Fatal(err)
	}
	if target(c.ReadinessProbe.GRPC.Port) != "" {
		terminate(t, &errs, p, target(c.ReadinessProbe.GRPC.Port), c, sts.Spec.Template.Spec.TerminationGracePeriodSeconds, grace)
	}
	return errs
}

// The file smoke puts in ferryd's root, for a pull through its channels.
const (
	smokeFile    = "smoke.txt"
	smokeContent = "moved over both channels\n"
)

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// smokeTLS checks both channels of a ferryd serving TLS as a client
// meets them: the control plane refuses plaintext gRPC and answers over
// TLS verified against the pod's headless name; the data channel
// completes a TLS 1.3 handshake for Ferry's data protocol, verified
// against the control plane's name (the ClusterIP Service's here), not
// the pod IP the offer names. With --tls-client-ca, a client without a
// certificate is refused.
func smokeTLS(t *testing.T, errs *problems, pki *testPKI, grpcAddr, dataAddr string) {
	t.Helper()
	check := func(conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: HealthService})
		return resp.GetStatus(), err
	}
	if st, err := check(dial(t, grpcAddr)); err == nil {
		errs.addf("plaintext health Check on the control plane (%s) = %v, want it refused: the port must be TLS only", grpcAddr, st)
	}
	if st, err := check(dialWith(t, grpcAddr, credentials.NewTLS(pki.clientTLS(pki.ctlName)))); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		errs.addf("health Check over TLS (CA of the test, server name %s) = %v, %v; want SERVING", pki.ctlName, st, err)
	}
	if pki.mutual {
		anon := pki.clientTLS(pki.ctlName)
		anon.Certificates = nil
		if st, err := check(dialWith(t, grpcAddr, credentials.NewTLS(anon))); err == nil {
			errs.addf("health Check over TLS without a client certificate = %v, want refused: --tls-client-ca requires one", st)
		}
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", dataAddr, pki.clientTLS(pki.dataName, dataALPN))
	if err != nil {
		errs.addf("TLS handshake on the data channel (%s, server name %s): %v", dataAddr, pki.dataName, err)
		return
	}
	defer conn.Close()
	if st := conn.ConnectionState(); st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != dataALPN {
		errs.addf("data channel: %s, ALPN %q; want TLS 1.3, %q", tls.VersionName(st.Version), st.NegotiatedProtocol, dataALPN)
	}
}

// dataALPN is the data channel's application protocol under TLS
// (transfer.DataALPN; this module does not import Ferry).
const dataALPN = "ferry-data/1"

// smokePull pulls a file with Ferry's own client, as a client in the
// cluster would: over TLS with the CA cert-manager's Secret carries,
// checking the server against the pod's headless name, the data channel
// included. Without --tls-ca the same pull must fail.
func smokePull(t *testing.T, errs *problems, pki *testPKI, grpcAddr string) {
	t.Helper()
	bin := ferryClient(t)
	dest := filepath.Join(t.TempDir(), "pulled")
	// --inline-max 0: the bytes must cross the data channel, not ride inside
	// the offer on the control plane.
	args := []string{"pull", "--inline-max", "0", "--server", grpcAddr, "--tls-ca", pki.caFile, "--tls-server-name", pki.ctlName}
	if pki.mutual {
		args = append(args, "--tls-cert", pki.clientCertFile, "--tls-key", pki.clientKeyFile)
	}
	out, err := runFerryd(t, bin, append(args, smokeFile, dest)...)
	switch got, _ := os.ReadFile(dest); {
	case err != nil || string(got) != smokeContent:
		errs.addf("ferry %s: %v, pulled %q, want %q\n%s", strings.Join(args, " "), err, got, smokeContent, out)
	case !regexp.MustCompile(`(?m)^data channel +TLS 1\.3, .* +TLS 1\.3, `).MatchString(out):
		errs.addf("ferry pull's report names no TLS 1.3 data channel on both ends:\n%s", out)
	default:
		t.Logf("ferry pull over TLS: %s", out)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if out, err := runFerryd(t, bin, "pull", "--inline-max", "0", "--server", grpcAddr, smokeFile, plain); err == nil {
		errs.addf("plaintext ferry pull from the TLS control plane succeeded, want it to fail\n%s", out)
	}
}
