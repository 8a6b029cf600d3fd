package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/internal/testpki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// secured is a ferryd that requires mutual TLS and a bearer token, with
// what a client needs to reach it.
type secured struct {
	*ferryd
	pki       testpki.PKI
	token     string
	tokenFile string
}

// startSecured runs ferryd on root with --tls-cert, --tls-key,
// --tls-client-ca, --auth-token-file and then args.
func startSecured(t *testing.T, root string, args ...string) secured {
	t.Helper()
	s := secured{pki: testpki.New(t, "ferry integration CA"), token: rand.Text()}
	s.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(s.tokenFile, []byte(s.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.ferryd = startFerrydDial(t, root, s.dialOptions(t), append(s.serverArgs(), args...)...)
	return s
}

func (s secured) serverArgs() []string {
	return []string{"--tls-cert", s.pki.ServerCert, "--tls-key", s.pki.ServerKey,
		"--tls-client-ca", s.pki.CA, "--auth-token-file", s.tokenFile}
}

// dialOptions are the test's own connection's: mutual TLS and the token.
// The server name is set, as the certificate has no wildcard address.
func (s secured) dialOptions(t *testing.T) []grpc.DialOption {
	t.Helper()
	sec := client.Security{CAFile: s.pki.CA, CertFile: s.pki.ClientCert, KeyFile: s.pki.ClientKey, ServerName: "localhost", Token: s.token}
	opts, err := sec.DialOptions()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// tlsFlags are the ferry CLI's flags to reach s with mutual TLS (and no
// token).
func (s secured) tlsFlags() []string {
	return []string{"--server", s.Addr, "--tls-ca", s.pki.CA, "--tls-cert", s.pki.ClientCert, "--tls-key", s.pki.ClientKey}
}

// ferryArgs builds a ferry command line: the command, its flags, then the
// positional arguments.
func ferryArgs(cmd string, flags []string, rest ...string) []string {
	return append(append([]string{cmd}, flags...), rest...)
}

// TestSecuredPull drives a ferryd that requires mutual TLS and a token
// with the ferry CLI: the right flags (or FERRY_* variables) pull
// byte-exact; a missing or wrong token is Unauthenticated; no client
// certificate, or plaintext, does not get through the handshake.
func TestSecuredPull(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	want := writeRandom(t, root, "f.bin", 2<<20+11)
	s := startSecured(t, root)
	withToken := append(s.tlsFlags(), "--token-file", s.tokenFile)

	t.Run("pull", func(t *testing.T) {
		for _, strategy := range []string{"read-write", "mmap"} {
			dest := filepath.Join(out, strategy)
			ferryOK(t, ferryArgs("pull", withToken, "--strategy", strategy, "f.bin", dest)...)
			got, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "pull --strategy "+strategy+" over mutual TLS with a token", got, want)
		}
	})
	t.Run("zero-copy strategies over TLS", func(t *testing.T) {
		// The data channel follows the control plane's TLS, in user
		// space: SENDFILE and SPLICE cannot encrypt, so they are refused,
		// not silently replaced.
		for _, strategy := range []string{"sendfile", "splice"} {
			dest := filepath.Join(out, strategy)
			r := ferry(t, ferryArgs("pull", withToken, "--strategy", strategy, "f.bin", dest)...)
			if r.code != 1 || !strings.Contains(r.stderr, "(FailedPrecondition)") || !strings.Contains(r.stderr, "TLS data channel") {
				t.Errorf("pull --strategy %s over a TLS data channel: exit %d, stderr %q; want FailedPrecondition naming TLS", strategy, r.code, r.stderr)
			}
		}
	})
	t.Run("env", func(t *testing.T) {
		env := append(cleanEnv(), "FERRY_SERVER="+s.Addr, "FERRY_TLS_CA="+s.pki.CA, "FERRY_TLS_CERT="+s.pki.ClientCert,
			"FERRY_TLS_KEY="+s.pki.ClientKey, "FERRY_TLS_SERVER_NAME=localhost", "FERRY_TOKEN_FILE="+s.tokenFile)
		if r := run(t, env, bin.ferry, "stat", "f.bin"); r.code != 0 {
			t.Errorf("ferry stat with FERRY_TLS_* and FERRY_TOKEN_FILE: exit %d, want 0\n%s", r.code, r.stderr)
		}
	})
	wrongToken := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongToken, []byte(s.token+"x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		code  string
	}{
		{"no token", s.tlsFlags(), "(Unauthenticated)"},
		{"wrong token", append(s.tlsFlags(), "--token-file", wrongToken), "(Unauthenticated)"},
		{"no client certificate", []string{"--server", s.Addr, "--tls-ca", s.pki.CA, "--token-file", s.tokenFile}, "(Unavailable)"},
		{"plaintext", []string{"--server", s.Addr, "--token-file", s.tokenFile}, "(Unavailable)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(out, strings.ReplaceAll(tc.name, " ", "-"))
			r := ferry(t, ferryArgs("pull", tc.flags, "f.bin", dest)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.code) {
				t.Errorf("ferry pull with %s: exit %d, stderr %q; want exit 1 and %s", tc.name, r.code, r.stderr, tc.code)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("ferry pull with %s left %s (stat: %v)", tc.name, dest, err)
			}
		})
	}
}

// TestSecuredGrpcurl drives the same ferryd with grpcurl, as an operator
// would: the token and a client certificate for the transfer service;
// health and reflection with the certificate alone; and a plaintext
// health check, as a Kubernetes gRPC probe makes one, fails.
func TestSecuredGrpcurl(t *testing.T) {
	grpcurl := toolPath(t, grpcurlTool)
	s := startSecured(t, t.TempDir())
	tlsArgs := []string{"-cacert", s.pki.CA, "-cert", s.pki.ClientCert, "-key", s.pki.ClientKey}
	call := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		return run(t, append(os.Environ(), env...), grpcurl, args...)
	}
	ok := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		r := call(t, env, args...)
		if r.code != 0 {
			t.Fatalf("grpcurl %q: exit %d\n%s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	t.Run("GetCapabilities", func(t *testing.T) {
		// -expand-headers keeps the token off the command line.
		out := ok(t, []string{"FERRY_TOKEN=" + s.token}, append(tlsArgs, "-expand-headers", "-H", "authorization: Bearer ${FERRY_TOKEN}",
			"-d", "{}", s.Addr, serviceName+"/GetCapabilities")...)
		if !strings.Contains(out, `"STRATEGY_READ_WRITE"`) {
			t.Errorf("grpcurl GetCapabilities with the token = %s, want the strategies", out)
		}
	})
	t.Run("GetCapabilities-no-token", func(t *testing.T) {
		r := call(t, nil, append(tlsArgs, "-d", "{}", s.Addr, serviceName+"/GetCapabilities")...)
		if r.code == 0 || !strings.Contains(r.stderr, "Code: Unauthenticated") {
			t.Errorf("grpcurl GetCapabilities without the token: exit %d, stderr %q; want Code: Unauthenticated", r.code, r.stderr)
		}
	})
	t.Run("health-no-token", func(t *testing.T) {
		out := ok(t, nil, append(tlsArgs, "-d", `{"service": "`+serviceName+`"}`, s.Addr, "grpc.health.v1.Health/Check")...)
		if !strings.Contains(out, `"status": "SERVING"`) {
			t.Errorf("grpcurl Health/Check without the token = %s, want SERVING", out)
		}
	})
	t.Run("list-no-token", func(t *testing.T) {
		if got := strings.Fields(ok(t, nil, append(tlsArgs, s.Addr, "list")...)); !slices.Contains(got, serviceName) {
			t.Errorf("grpcurl list without the token = %q, want it to include %s", got, serviceName)
		}
	})
	t.Run("health-plaintext", func(t *testing.T) {
		if r := call(t, nil, "-plaintext", s.Addr, "grpc.health.v1.Health/Check"); r.code == 0 {
			t.Errorf("grpcurl -plaintext Health/Check against a TLS ferryd: exit 0, want a failure\n%s", r.stdout)
		}
	})
}

// TestInsecureListenWarning checks ferryd's start-up warning: loud when
// the control plane listens beyond loopback with neither TLS nor a token,
// absent otherwise.
func TestInsecureListenWarning(t *testing.T) {
	const warning = "neither TLS nor a token"
	plain := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	t.Run("wildcard-plaintext", func(t *testing.T) {
		d := startFerrydDial(t, t.TempDir(), plain, "--listen", "0.0.0.0:0")
		if log := d.Log.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, warning) {
			t.Errorf("ferryd --listen 0.0.0.0:0 with neither TLS nor a token logged no warning that says %q:\n%s", warning, log)
		}
	})
	t.Run("wildcard-secured", func(t *testing.T) {
		d := startSecured(t, t.TempDir(), "--listen", "0.0.0.0:0")
		log := d.Log.String()
		if strings.Contains(log, "INSECURE") || !strings.Contains(log, "tls=mutual token=true") {
			t.Errorf("ferryd --listen 0.0.0.0:0 with mutual TLS and a token warned, or did not log tls=mutual token=true:\n%s", log)
		}
	})
	t.Run("loopback-plaintext", func(t *testing.T) {
		d := startFerryd(t, t.TempDir())
		if log := d.Log.String(); strings.Contains(log, "INSECURE") {
			t.Errorf("ferryd on loopback warned:\n%s", log)
		}
	})
}
