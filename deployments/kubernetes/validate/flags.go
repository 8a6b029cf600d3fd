package validate

import (
	"fmt"
	"strings"
	"time"
)

// Flag is one of ferryd's command-line flags. Type is the word
// `ferryd -h` prints after the name: "string", "duration", "" for bools.
type Flag struct {
	Name, Type, Default string
	// ZeroMeans is what ferryd makes of a zero duration ("0: 20s").
	ZeroMeans time.Duration
	// Repeatable flags add up: each occurrence on the command line adds
	// its comma-separated values (the environment counts only when the
	// command line has none).
	Repeatable bool
}

// FerrydFlags mirrors cmd/ferryd's flags. A test compares it with the
// usage of the real binary, so a flag added, removed or renamed in ferryd
// fails until this table (and the manifests) follow.
var FerrydFlags = []Flag{
	{Name: "root", Type: "string", Default: "."},
	{Name: "listen", Type: "string", Default: "127.0.0.1:7070"},
	{Name: "data-listen", Type: "string", Default: "127.0.0.1:7071"},
	{Name: "advertise-data", Type: "string"},
	{Name: "ticket-ttl", Type: "duration", Default: "0s", ZeroMeans: 30 * time.Second},
	{Name: "shutdown-grace", Type: "duration", Default: "0s", ZeroMeans: 20 * time.Second},
	{Name: "metrics-listen", Type: "string"},
	{Name: "health-listen", Type: "string"},
	{Name: "tls-cert", Type: "string"},
	{Name: "tls-key", Type: "string"},
	{Name: "tls-client-ca", Type: "string"},
	{Name: "data-tls", Type: "string", Default: "follow"},
	{Name: "auth-token-file", Type: "string"},
	{Name: "allow-pull", Default: "false"},
	{Name: "allow-peer", Type: "peers", Repeatable: true},
	{Name: "peer-tls-ca", Type: "string"},
	{Name: "peer-plaintext-data", Default: "false"},
	{Name: "peer-token-file", Type: "string"},
	{Name: "max-transfers", Type: "int", Default: "0"},
	{Name: "max-streams", Type: "int", Default: "0"},
	{Name: "max-open-streams", Type: "int", Default: "0"},
	{Name: "max-file-streams", Type: "int", Default: "0"},
	{Name: "max-handshakes", Type: "int", Default: "0"},
	{Name: "handshake-timeout", Type: "duration", Default: "0s", ZeroMeans: 10 * time.Second},
	{Name: "max-handshakes-per-ip", Type: "int", Default: "0"},
	{Name: "first-byte-timeout", Type: "duration", Default: "0s", ZeroMeans: 2 * time.Second},
	{Name: "bind-data-to-client", Default: "false"},
	{Name: "session-conns", Type: "int", Default: "0"},
	{Name: "max-bound-conns", Type: "int", Default: "0"},
	{Name: "pipe-size", Type: "int", Default: "0"},
	{Name: "max-rate", Type: "rate", Default: "0"},
	{Name: "max-flow-rate", Type: "rate", Default: "0"},
	{Name: "auto", Type: "string", Default: "measure"},
	{Name: "auto-explore-every", Type: "int", Default: "0"},
	{Name: "auto-probe", Default: "true"},
	{Name: "transfer-history", Type: "int", Default: "0"},
	{Name: "pull-max-bytes", Type: "size", Default: "0"},
	{Name: "pull-idle-timeout", Type: "duration", Default: "0s", ZeroMeans: 60 * time.Second},
	{Name: "log-format", Type: "string", Default: "text"},
	{Name: "log-level", Type: "string", Default: "info"},
	{Name: "version", Default: "false"},
}

func ferrydFlag(name string) (Flag, bool) {
	for _, f := range FerrydFlags {
		if f.Name == name {
			return f, true
		}
	}
	return Flag{}, false
}

// EnvName is the variable ferryd reads a flag from: FERRY_DATA_LISTEN.
func EnvName(flag string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// argFlag is a flag found on a command line: args[at:at+n] hold it.
type argFlag struct {
	name, value string
	at, n       int
}

// parseArgs reads a command line the way Go's flag package does for
// ferryd: -name, --name, -name=value, or -name value for non-bools. An
// unknown flag or a positional argument is an error, as in ferryd.
func parseArgs(args []string) ([]argFlag, error) {
	var got []argFlag
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return nil, fmt.Errorf("positional argument %q: ferryd takes flags only", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f, ok := ferrydFlag(name)
		if !ok {
			return nil, fmt.Errorf("ferryd has no flag %q", a)
		}
		af := argFlag{name: name, value: value, at: i, n: 1}
		switch {
		case !hasValue && f.Type == "":
			af.value = "true"
		case !hasValue && i+1 == len(args):
			return nil, fmt.Errorf("flag %q needs a value", a)
		case !hasValue:
			af.value, af.n = args[i+1], 2
			i++
		}
		got = append(got, af)
	}
	return got, nil
}

// Settings are ferryd's effective flag values: the command line wins,
// then FERRY_<FLAG>, then the default.
type Settings map[string]string

// Resolve works out ferryd's settings from a container's args and env.
func Resolve(args []string, env *Env) (Settings, error) {
	parsed, err := parseArgs(args)
	if err != nil {
		return nil, err
	}
	s := Settings{}
	for _, f := range FerrydFlags {
		s[f.Name] = f.Default
		if v, ok := env.Lookup(EnvName(f.Name)); ok {
			s[f.Name] = v
		}
	}
	seen := map[string]bool{}
	for _, af := range parsed {
		if f, _ := ferrydFlag(af.name); f.Repeatable && seen[af.name] {
			s[af.name] += "," + af.value
		} else {
			s[af.name] = af.value
		}
		seen[af.name] = true
	}
	return s, nil
}

// Duration returns a duration setting as ferryd uses it, zero replaced
// by its documented default.
func (s Settings) Duration(name string) (time.Duration, error) {
	f, _ := ferrydFlag(name)
	d, err := time.ParseDuration(s[name])
	if err != nil {
		return 0, fmt.Errorf("--%s=%q: %w", name, s[name], err)
	}
	if d == 0 {
		d = f.ZeroMeans
	}
	return d, nil
}

// SetFlag makes ferryd see value for flag name wherever the container
// gives it: in args if there, else in env if there, else as a new arg.
func SetFlag(args []string, env *Env, name, value string) ([]string, error) {
	parsed, err := parseArgs(args)
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), args...)
	found := false
	for i := len(parsed) - 1; i >= 0; i-- {
		if af := parsed[i]; af.name == name {
			out = append(out[:af.at], append([]string{"--" + name + "=" + value}, out[af.at+af.n:]...)...)
			found = true
		}
	}
	if _, inEnv := env.Lookup(EnvName(name)); inEnv {
		env.Set(EnvName(name), value)
		found = true
	}
	if !found {
		out = append(out, "--"+name+"="+value)
	}
	return out, nil
}
