package validate

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func (p *pod) checkImage(errs *problems) {
	if p.c.Image == "" {
		errs.addf("container ferryd has no image")
	}
	if len(p.c.Command) > 0 {
		errs.addf("container ferryd sets command %q: it replaces the image's ENTRYPOINT [\"/ferryd\"]", p.c.Command)
	}
}

// checkSettings checks ferryd's effective flags and that every FERRY_*
// variable names a flag: ferryd ignores the others without a word.
func (p *pod) checkSettings(errs *problems) {
	env, _ := p.m.ContainerEnv(p.c, p.downward(placeholderIP4))
	for _, kv := range env.List() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FERRY_") && !isFlagEnv(name) {
			errs.addf("env %s names no ferryd flag; ferryd ignores it", name)
		}
	}
	for _, name := range []string{"listen", "data-listen", "health-listen"} {
		if name == "health-listen" && p.set[name] == "" {
			continue
		}
		host, _, err := net.SplitHostPort(p.set[name])
		if err != nil || (host != "" && !net.ParseIP(host).IsUnspecified()) {
			errs.addf("--%s=%q: want 0.0.0.0:PORT or [::]:PORT, reachable at the pod IP", name, p.set[name])
		}
	}
	if p.set["root"] != DataDir {
		errs.addf("--root=%q, want %s (the volumeClaimTemplate's mount)", p.set["root"], DataDir)
	}
	if p.set["version"] != "false" {
		errs.addf("version=%q: ferryd would print its version and exit", p.set["version"])
	}
	if f := p.set["log-format"]; f != "text" && f != "json" {
		errs.addf("--log-format=%q, want text or json", f)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(p.set["log-level"])); err != nil {
		errs.addf("--log-level: %v", err)
	}
	if p.set["allow-pull"] == "true" && strings.Trim(p.set["allow-peer"], ", ") == "" {
		errs.addf("--allow-pull without --allow-peer: ferryd pulls from loopback peers only, never from another pod; " +
			"list the pods' headless names (FERRY_ALLOW_PEER=*.ferry-headless.<namespace>.svc.cluster.local)")
	}
	for _, name := range []string{"ticket-ttl", "shutdown-grace", "handshake-timeout"} {
		if _, err := p.set.Duration(name); err != nil {
			errs.addf("%v", err)
		}
	}
}

func isFlagEnv(name string) bool {
	for _, f := range FerrydFlags {
		if EnvName(f.Name) == name {
			return true
		}
	}
	return false
}

// checkAdvertise checks that offers name the pod's own IP, for IPv4 and
// IPv6 pod IPs alike, through $(POD_IP) from status.podIP.
func (p *pod) checkAdvertise(errs *problems) {
	podIP, adv := p.env("POD_IP"), p.env(EnvName("advertise-data"))
	switch {
	case podIP == nil || podIP.ValueFrom == nil || podIP.ValueFrom.FieldRef == nil ||
		podIP.ValueFrom.FieldRef.FieldPath != "status.podIP":
		errs.addf("env POD_IP must come from fieldRef status.podIP")
	case adv == nil || !strings.Contains(adv.Value, "$(POD_IP)"):
		errs.addf("env %s must refer to $(POD_IP)", EnvName("advertise-data"))
	}
	_, dataPort, _ := net.SplitHostPort(p.set["data-listen"])
	for _, ip := range []string{placeholderIP4, placeholderIP6} {
		set, err := p.settings(ip)
		if err != nil {
			errs.addf("%v", err)
			continue
		}
		got := set["advertise-data"]
		if got != ip && got != net.JoinHostPort(ip, dataPort) {
			errs.addf("with pod IP %s ferryd advertises %q, want %q or %q", ip, got, ip, net.JoinHostPort(ip, dataPort))
		}
	}
}

func (p *pod) env(name string) *corev1.EnvVar {
	var found *corev1.EnvVar
	for i := range p.c.Env {
		if p.c.Env[i].Name == name {
			found = &p.c.Env[i]
		}
	}
	return found
}

// checkPorts checks the container ports named grpc, data and (with
// --health-listen) health against the ports ferryd listens on.
func (p *pod) checkPorts(errs *problems) {
	ports := map[string]string{"grpc": "listen", "data": "data-listen"}
	if p.set["health-listen"] != "" {
		ports["health"] = "health-listen"
	}
	for name, flag := range ports {
		_, port, _ := net.SplitHostPort(p.set[flag])
		cp := p.containerPort(name)
		switch {
		case cp == nil:
			errs.addf("container ferryd has no port named %s", name)
		case strconv.Itoa(int(cp.ContainerPort)) != port:
			errs.addf("container port %s is %d but --%s=%q", name, cp.ContainerPort, flag, p.set[flag])
		case cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP:
			errs.addf("container port %s: protocol %s, want TCP", name, cp.Protocol)
		}
	}
	for _, cp := range p.c.Ports {
		if cp.Name == "" {
			errs.addf("container port %d has no name", cp.ContainerPort)
		}
	}
}

// checkProbes checks that liveness and readiness are native gRPC health
// checks in plaintext (the kubelet's gRPC probe speaks no TLS by default
// and presents no client certificate): on the gRPC port when the control
// plane is plaintext, on --health-listen's port (named health) when it
// has TLS.
func (p *pod) checkProbes(errs *problems) {
	want := "grpc"
	if p.tls() {
		want = "health"
		if p.set["health-listen"] == "" {
			errs.addf("the control plane has TLS (--tls-cert) but no --health-listen: " +
				"the kubelet's plaintext gRPC probes cannot reach it; add --health-listen=0.0.0.0:PORT and probe that port")
		}
	}
	wantPort, grpcPort := p.containerPort(want), p.containerPort("grpc")
	for kind, pr := range map[string]*corev1.Probe{"readinessProbe": p.c.ReadinessProbe, "livenessProbe": p.c.LivenessProbe} {
		switch {
		case pr == nil:
			errs.addf("%s missing", kind)
		case pr.GRPC == nil || pr.Exec != nil || pr.HTTPGet != nil || pr.TCPSocket != nil:
			errs.addf("%s must be a native gRPC probe only", kind)
		case p.tls() && grpcPort != nil && pr.GRPC.Port == grpcPort.ContainerPort:
			errs.addf("%s probes port %d, the TLS control plane, in plaintext: it never succeeds; probe the port named health (--health-listen)", kind, pr.GRPC.Port)
		case wantPort == nil || pr.GRPC.Port != wantPort.ContainerPort:
			errs.addf("%s probes port %d, not the port named %s", kind, pr.GRPC.Port, want)
		case pr.GRPC.Service != nil && *pr.GRPC.Service != "" && *pr.GRPC.Service != HealthService:
			errs.addf("%s asks for health service %q; ferryd reports \"\" and %q", kind, *pr.GRPC.Service, HealthService)
		case pr.GRPC.Mode != nil && *pr.GRPC.Mode != corev1.GRPCProbeModePlaintext:
			errs.addf("%s mode %s: the probes must be plaintext (ferryd's health endpoints for the kubelet are)", kind, *pr.GRPC.Mode)
		}
	}
	if p.c.StartupProbe != nil && p.c.StartupProbe.Exec != nil {
		errs.addf("startupProbe exec: the image has no shell or tools")
	}
}

// checkShutdown checks that the kubelet's SIGKILL comes after the preStop
// sleep and ferryd's whole shutdown grace.
func (p *pod) checkShutdown(errs *problems) {
	grace, err := p.set.Duration("shutdown-grace")
	if err != nil {
		return // reported by checkSettings
	}
	var preStop time.Duration
	if lc := p.c.Lifecycle; lc != nil && lc.PreStop != nil {
		switch h := lc.PreStop; {
		case h.Sleep != nil:
			preStop = time.Duration(h.Sleep.Seconds) * time.Second
		case h.Exec != nil:
			errs.addf("preStop exec: the distroless image has no shell or sleep; use the sleep handler")
		}
	}
	tgps := p.sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if tgps == nil || time.Duration(*tgps)*time.Second <= preStop+grace {
		errs.addf("terminationGracePeriodSeconds %v must exceed preStop sleep %v + shutdown grace %v", deref(tgps), preStop, grace)
	}
}

func deref[T any](v *T) any {
	if v == nil {
		return "unset"
	}
	return *v
}
