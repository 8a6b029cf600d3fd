package validate

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (p *pod) checkPodSecurity(errs *problems) {
	spec := &p.sts.Spec.Template.Spec
	sc := spec.SecurityContext
	if sc == nil {
		errs.addf("pod has no securityContext")
		return
	}
	if !isTrue(sc.RunAsNonRoot) {
		errs.addf("pod securityContext.runAsNonRoot must be true")
	}
	for name, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup, "fsGroup": sc.FSGroup} {
		if id == nil || *id != UID {
			errs.addf("pod securityContext.%s is %v, want %d", name, deref(id), UID)
		}
	}
	seccomp := sc.SeccompProfile
	if cs := p.c.SecurityContext; cs != nil && cs.SeccompProfile != nil {
		seccomp = cs.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errs.addf("seccompProfile must be RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		errs.addf("pod must not share the host's network, PID or IPC namespace")
	}
}

func (p *pod) checkContainerSecurity(errs *problems) {
	sc := p.c.SecurityContext
	if sc == nil {
		errs.addf("container ferryd has no securityContext")
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs.addf("container allowPrivilegeEscalation must be false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		errs.addf("container readOnlyRootFilesystem must be true")
	}
	if isTrue(sc.Privileged) {
		errs.addf("container must not be privileged")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser != UID {
		errs.addf("container runAsUser %d, want %d", *sc.RunAsUser, UID)
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		errs.addf("container runAsNonRoot is false")
	}
	caps := sc.Capabilities
	if caps == nil || !slices.Contains(caps.Drop, "ALL") {
		errs.addf("container capabilities must drop ALL")
	}
	if caps != nil && len(caps.Add) > 0 {
		errs.addf("container adds capabilities %v; ferryd needs none", caps.Add)
	}
}

// checkAccount checks that no API token reaches the pod.
func (p *pod) checkAccount(errs *problems) {
	spec := &p.sts.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		errs.addf("pod automountServiceAccountToken must be false")
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		errs.addf("pod enableServiceLinks must be false: Service links add FERRY_* variables and ferryd reads FERRY_<FLAG>")
	}
	name := spec.ServiceAccountName
	if name == "" || name == "default" {
		errs.addf("pod uses the namespace's default ServiceAccount; give ferry its own")
		return
	}
	sa := p.m.ServiceAccount(name)
	if sa == nil {
		errs.addf("ServiceAccount %q is not in the manifests", name)
	} else if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		errs.addf("ServiceAccount %q automountServiceAccountToken must be false", name)
	}
}

func (p *pod) checkResources(errs *problems) {
	r := p.c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := r.Requests[name]; !ok || q.IsZero() {
			errs.addf("container ferryd requests no %s", name)
		}
	}
	if q, ok := r.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		errs.addf("container ferryd has no memory limit")
	}
}

// checkVolumes checks /data (a claim template, writable: Pull writes
// there), the Secret at /etc/ferry/secrets (read-only, optional) and that
// no volume comes from the host.
func (p *pod) checkVolumes(errs *problems) {
	data, secrets := p.mount(DataDir), p.mount(SecretsDir)
	switch {
	case data == nil:
		errs.addf("nothing is mounted at %s", DataDir)
	case !p.hasClaimTemplate(data.Name):
		errs.addf("%s is volume %q, not a volumeClaimTemplate", DataDir, data.Name)
	case data.ReadOnly:
		errs.addf("%s is read-only; Pull writes into the root", DataDir)
	}
	if secrets == nil {
		errs.addf("nothing is mounted at %s", SecretsDir)
	} else if !secrets.ReadOnly {
		errs.addf("%s must be mounted read-only", SecretsDir)
	}
	for _, v := range p.sts.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			errs.addf("volume %q is a hostPath", v.Name)
		}
		if secrets != nil && v.Name == secrets.Name {
			p.checkSecretVolume(errs, v)
		}
	}
}

func (p *pod) checkSecretVolume(errs *problems, v corev1.Volume) {
	switch s := v.Secret; {
	case s == nil:
		errs.addf("volume %q at %s is not a Secret", v.Name, SecretsDir)
	case !isTrue(s.Optional):
		errs.addf("Secret volume %q must be optional: the base's Secret is empty until an overlay adds token/TLS files", v.Name)
	case p.m.Secret(s.SecretName) == nil:
		errs.addf("Secret %q is not in the manifests", s.SecretName)
	}
}

func (p *pod) mount(path string) *corev1.VolumeMount {
	for i := range p.c.VolumeMounts {
		if p.c.VolumeMounts[i].MountPath == path {
			return &p.c.VolumeMounts[i]
		}
	}
	return nil
}

func (p *pod) hasClaimTemplate(name string) bool {
	for _, t := range p.sts.Spec.VolumeClaimTemplates {
		if t.Name == name {
			_, ok := t.Spec.Resources.Requests[corev1.ResourceStorage]
			return ok
		}
	}
	return false
}

// checkSelector checks that the StatefulSet selects its own pods.
func (p *pod) checkSelector(errs *problems) {
	if !p.selects(p.sts.Spec.Selector) {
		errs.addf("StatefulSet selector %s does not match its pod labels %s",
			metav1.FormatLabelSelector(p.sts.Spec.Selector), p.podLabels())
	}
}
