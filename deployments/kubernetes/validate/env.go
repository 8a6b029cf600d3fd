package validate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Downward maps the fieldRef paths a pod may read (status.podIP,
// metadata.name, ...) to the values the kubelet would give it.
type Downward map[string]string

// Env is a container's environment in the order the kubelet sets it.
type Env struct {
	names []string
	vals  map[string]string
}

func (e *Env) set(name, val string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = val
}

// Lookup returns a variable's value.
func (e *Env) Lookup(name string) (string, bool) {
	v, ok := e.vals[name]
	return v, ok
}

// Set sets a variable, as a later env entry would.
func (e *Env) Set(name, val string) { e.set(name, val) }

// List returns the environment as NAME=value strings, for os/exec.
func (e *Env) List() []string {
	list := make([]string, 0, len(e.names))
	for _, n := range e.names {
		list = append(list, n+"="+e.vals[n])
	}
	return list
}

// ContainerEnv builds c's environment the way the kubelet does: envFrom
// sources first, then env in order, a later definition replacing an
// earlier one, and $(VAR) in a value expanded from what is defined before
// it. fieldRef values come from dw; resourceFieldRef is not supported.
func (m Manifests) ContainerEnv(c *corev1.Container, dw Downward) (*Env, error) {
	env := &Env{}
	for _, src := range c.EnvFrom {
		if err := m.envFrom(env, src); err != nil {
			return nil, err
		}
	}
	for _, v := range c.Env {
		val, err := m.envValue(env, v, dw)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", v.Name, err)
		}
		env.set(v.Name, val)
	}
	return env, nil
}

func (m Manifests) envFrom(env *Env, src corev1.EnvFromSource) error {
	data := map[string]string{}
	switch {
	case src.ConfigMapRef != nil:
		cm := m.ConfigMap(src.ConfigMapRef.Name)
		if cm == nil && !isTrue(src.ConfigMapRef.Optional) {
			return fmt.Errorf("envFrom: no ConfigMap %q", src.ConfigMapRef.Name)
		}
		if cm != nil {
			data = cm.Data
		}
	case src.SecretRef != nil:
		s := m.Secret(src.SecretRef.Name)
		if s == nil && !isTrue(src.SecretRef.Optional) {
			return fmt.Errorf("envFrom: no Secret %q", src.SecretRef.Name)
		}
		if s != nil {
			data = secretData(s)
		}
	default:
		return fmt.Errorf("envFrom: unsupported source %+v", src)
	}
	for _, k := range slices.Sorted(maps.Keys(data)) {
		env.set(src.Prefix+k, data[k])
	}
	return nil
}

func (m Manifests) envValue(env *Env, v corev1.EnvVar, dw Downward) (string, error) {
	from := v.ValueFrom
	switch {
	case from == nil:
		return Expand(v.Value, env.Lookup), nil
	case from.FieldRef != nil:
		val, ok := dw[from.FieldRef.FieldPath]
		if !ok {
			return "", fmt.Errorf("no downward value for fieldRef %q", from.FieldRef.FieldPath)
		}
		return val, nil
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm := m.ConfigMap(ref.Name)
		if cm == nil {
			return "", fmt.Errorf("no ConfigMap %q", ref.Name)
		}
		return cm.Data[ref.Key], nil
	}
	return "", fmt.Errorf("unsupported valueFrom %+v", from)
}

func secretData(s *corev1.Secret) map[string]string {
	data := map[string]string{}
	for k, v := range s.Data {
		data[k] = string(v)
	}
	for k, v := range s.StringData {
		data[k] = v
	}
	return data
}

// Expand expands $(VAR) references the way Kubernetes does in env values,
// command and args: a defined VAR is replaced, an undefined reference is
// kept as written, and $$ is a literal $.
func Expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 { // incomplete: kept, the rest still expands
				b.WriteString("$(")
				i++
				continue
			}
			ref := s[i : i+3+end]
			if v, ok := lookup(s[i+2 : i+2+end]); ok {
				ref = v
			}
			b.WriteString(ref)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ExpandAll expands each of args from env, as the kubelet does for args.
func ExpandAll(args []string, env *Env) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = Expand(a, env.Lookup)
	}
	return out
}

func isTrue(b *bool) bool { return b != nil && *b }
