package validate

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What the checks expect of ferryd's pod.
const (
	UID            = 65532 // the image's USER; runAsUser, runAsGroup, fsGroup
	DataDir        = "/data"
	SecretsDir     = "/etc/ferry/secrets"
	ClientLabel    = "ferry.dev/client"
	HealthService  = "ferry.v1.TransferService"
	placeholderIP4 = "192.0.2.10"
	placeholderIP6 = "2001:db8::10"
)

// problems collects what a check found wrong.
type problems []error

func (p *problems) addf(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

// pod is what the checks look at: the StatefulSet, its ferryd container
// and ferryd's effective settings there.
type pod struct {
	m   Manifests
	sts *appsv1.StatefulSet
	c   *corev1.Container
	set Settings
}

// Check runs every check on a rendering and returns what is wrong.
func Check(m Manifests) []error {
	sts, c, err := m.Ferryd()
	if err != nil {
		return []error{err}
	}
	p := &pod{m: m, sts: sts, c: c}
	if p.set, err = p.settings(placeholderIP4); err != nil {
		return []error{err}
	}
	var errs problems
	for _, check := range []func(*problems){
		p.checkImage, p.checkSettings, p.checkAdvertise, p.checkPorts, p.checkProbes,
		p.checkShutdown, p.checkPodSecurity, p.checkContainerSecurity, p.checkAccount,
		p.checkResources, p.checkVolumes, p.checkSelector, p.checkServices,
		p.checkPDB, p.checkNetworkPolicy, p.checkTLS, p.checkIssuers,
	} {
		check(&errs)
	}
	return errs
}

// settings resolves ferryd's flags with status.podIP = podIP.
func (p *pod) settings(podIP string) (Settings, error) {
	env, err := p.m.ContainerEnv(p.c, p.downward(podIP))
	if err != nil {
		return nil, err
	}
	return Resolve(ExpandAll(p.c.Args, env), env)
}

func (p *pod) downward(podIP string) Downward {
	return Downward{
		"status.podIP":       podIP,
		"status.podIPs":      podIP,
		"status.hostIP":      "198.51.100.1",
		"metadata.name":      p.sts.Name + "-0",
		"metadata.namespace": p.sts.Namespace,
		"spec.nodeName":      "node-0",
	}
}

func (p *pod) podLabels() labels.Set { return p.sts.Spec.Template.Labels }

// selects reports whether sel matches ferryd's pods; nil and empty
// selectors never count.
func (p *pod) selects(sel *metav1.LabelSelector) bool {
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(p.podLabels())
}

func (p *pod) selectsMap(sel map[string]string) bool {
	return p.selects(&metav1.LabelSelector{MatchLabels: sel})
}

// containerPort returns the container's port called name, or nil.
func (p *pod) containerPort(name string) *corev1.ContainerPort {
	for i := range p.c.Ports {
		if p.c.Ports[i].Name == name {
			return &p.c.Ports[i]
		}
	}
	return nil
}

// CheckAll joins Check's findings into one error, nil when there are none.
func CheckAll(m Manifests) error { return errors.Join(Check(m)...) }
