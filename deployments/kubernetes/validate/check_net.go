package validate

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkServices checks the headless Service (pod-to-pod, both ports, the
// StatefulSet's serviceName) and the ClusterIP Service (control plane
// only: a data connection through it could reach the wrong pod).
func (p *pod) checkServices(errs *problems) {
	var headless, clusterIP int
	for _, s := range p.m.Services() {
		if !p.selectsMap(s.Spec.Selector) {
			errs.addf("Service %q selector %v does not select ferryd's pods", s.Name, s.Spec.Selector)
		}
		targets := p.checkServicePorts(errs, s)
		if targets["health"] {
			errs.addf("Service %q exposes the plaintext health port: only the kubelet needs it, and it reaches the pod directly", s.Name)
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless++
			p.checkHeadless(errs, s, targets)
			continue
		}
		clusterIP++
		if s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
			errs.addf("Service %q is %s, want ClusterIP", s.Name, s.Spec.Type)
		}
		if targets["data"] {
			errs.addf("Service %q exposes the data port: data connections must reach the pod that issued the ticket", s.Name)
		}
		if !targets["grpc"] {
			errs.addf("Service %q does not expose the grpc port", s.Name)
		}
	}
	if gov := service(p.m, p.sts.Spec.ServiceName); gov == nil || gov.Spec.ClusterIP != corev1.ClusterIPNone {
		errs.addf("StatefulSet serviceName %q must name a headless Service (clusterIP: None)", p.sts.Spec.ServiceName)
	}
	if headless == 0 || clusterIP == 0 {
		errs.addf("want a headless Service and a ClusterIP Service, got %d and %d", headless, clusterIP)
	}
}

// checkServicePorts checks each port's name, target and appProtocol and
// returns the names of the container ports it reaches.
func (p *pod) checkServicePorts(errs *problems, s *corev1.Service) map[string]bool {
	targets := map[string]bool{}
	for _, sp := range s.Spec.Ports {
		cp := p.target(sp)
		switch {
		case sp.Name == "":
			errs.addf("Service %q port %d has no name", s.Name, sp.Port)
		case cp == nil:
			errs.addf("Service %q port %s targets %s, no port of ferryd", s.Name, sp.Name, sp.TargetPort.String())
		case cp.Name == "grpc" && (sp.AppProtocol == nil || *sp.AppProtocol != "grpc"):
			errs.addf("Service %q port %s: appProtocol must be grpc", s.Name, sp.Name)
		}
		if cp != nil {
			targets[cp.Name] = true
		}
	}
	return targets
}

func (p *pod) checkHeadless(errs *problems, s *corev1.Service, targets map[string]bool) {
	if s.Spec.PublishNotReadyAddresses {
		errs.addf("headless Service %q publishes pods that are not ready", s.Name)
	}
	if !targets["grpc"] || !targets["data"] {
		errs.addf("headless Service %q must expose the grpc and data ports", s.Name)
	}
}

// target returns the container port a Service port sends to, or nil.
func (p *pod) target(sp corev1.ServicePort) *corev1.ContainerPort {
	tp := sp.TargetPort
	if tp.Type == intstr.String && tp.StrVal != "" {
		return p.containerPort(tp.StrVal)
	}
	want := sp.Port
	if tp.IntVal != 0 {
		want = tp.IntVal
	}
	for i := range p.c.Ports {
		if p.c.Ports[i].ContainerPort == want {
			return &p.c.Ports[i]
		}
	}
	return nil
}

func (p *pod) checkPDB(errs *problems) {
	found := false
	for _, pdb := range p.m.PodDisruptionBudgets() {
		if !p.selects(pdb.Spec.Selector) {
			errs.addf("PodDisruptionBudget %q does not select ferryd's pods", pdb.Name)
			continue
		}
		found = true
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			errs.addf("PodDisruptionBudget %q sets neither minAvailable nor maxUnavailable", pdb.Name)
		}
	}
	if !found {
		errs.addf("no PodDisruptionBudget selects ferryd's pods")
	}
}

// checkNetworkPolicy checks that ingress to ferryd is limited to the gRPC
// and data ports, from labelled clients and from ferry's own pods.
func (p *pod) checkNetworkPolicy(errs *problems) {
	fromClients, fromPeers := map[string]bool{}, map[string]bool{}
	for _, np := range p.m.NetworkPolicies() {
		if !p.selects(&np.Spec.PodSelector) {
			continue
		}
		if !hasIngressType(np) {
			errs.addf("NetworkPolicy %q does not restrict Ingress", np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			ports := p.checkRule(errs, np.Name, rule)
			for _, peer := range rule.From {
				for _, port := range ports {
					fromClients[port] = fromClients[port] || isClientPeer(peer)
					fromPeers[port] = fromPeers[port] || (peer.PodSelector != nil && p.selects(peer.PodSelector))
				}
			}
		}
	}
	for _, port := range []string{"grpc", "data"} {
		if !fromClients[port] || !fromPeers[port] {
			errs.addf("NetworkPolicy must admit port %s from pods labelled %s=true and from ferry's pods", port, ClientLabel)
		}
	}
}

// checkRule reports rules that admit too much and returns the names of
// the container ports the rule admits.
func (p *pod) checkRule(errs *problems, name string, rule networkingv1.NetworkPolicyIngressRule) []string {
	if len(rule.From) == 0 {
		errs.addf("NetworkPolicy %q has an ingress rule from anywhere", name)
	}
	for _, peer := range rule.From {
		if peer.IPBlock != nil {
			errs.addf("NetworkPolicy %q admits an ipBlock", name)
		}
	}
	if len(rule.Ports) == 0 {
		errs.addf("NetworkPolicy %q has an ingress rule for every port", name)
	}
	var names []string
	for _, np := range rule.Ports {
		cp := p.policyPort(np)
		if cp == nil {
			errs.addf("NetworkPolicy %q admits port %v, which is neither grpc nor data", name, np.Port)
			continue
		}
		names = append(names, cp.Name)
	}
	return names
}

// policyPort returns the grpc or data container port a NetworkPolicy port
// names exactly, or nil.
func (p *pod) policyPort(np networkingv1.NetworkPolicyPort) *corev1.ContainerPort {
	if np.Port == nil || np.EndPort != nil || (np.Protocol != nil && *np.Protocol != corev1.ProtocolTCP) {
		return nil
	}
	for _, name := range []string{"grpc", "data"} {
		cp := p.containerPort(name)
		if cp != nil && (np.Port.StrVal == name || (np.Port.Type == intstr.Int && np.Port.IntVal == cp.ContainerPort)) {
			return cp
		}
	}
	return nil
}

func isClientPeer(peer networkingv1.NetworkPolicyPeer) bool {
	sel := peer.PodSelector
	return sel != nil && len(sel.MatchExpressions) == 0 && len(sel.MatchLabels) == 1 && sel.MatchLabels[ClientLabel] == "true"
}

func hasIngressType(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true // Ingress is implied
	}
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func service(m Manifests, name string) *corev1.Service { return named[*corev1.Service](m, name) }
