package service_test

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/testpki"
	"github.com/ferrydev/ferry/service"
)

// TestInsecureWarning checks the start-up warnings: a control plane that
// other hosts can reach with neither TLS nor a token, or with a token but
// no TLS. Loopback, the default, stays quiet.
func TestInsecureWarning(t *testing.T) {
	tlsCfg := serverTLS(t, testpki.New(t, "ferry test CA"), false)
	const noAuth, inClear = "neither TLS nor a token", "token crosses the network in clear"
	for _, tc := range []struct {
		cfg  service.Config
		want string // "" means no warning
	}{
		{service.Config{Listen: "0.0.0.0:0"}, noAuth},
		{service.Config{Listen: "[::]:0"}, noAuth},
		{service.Config{Listen: "0.0.0.0:0", AuthToken: testToken}, inClear},
		{service.Config{Listen: "0.0.0.0:0", TLS: tlsCfg}, ""},
		{service.Config{Listen: "0.0.0.0:0", TLS: tlsCfg, AuthToken: testToken}, ""},
		{service.Config{Listen: "127.0.0.1:0"}, ""},
		{service.Config{Listen: "[::1]:0", AuthToken: testToken}, ""},
	} {
		if strings.HasPrefix(tc.cfg.Listen, "[") && !hasIPv6() {
			t.Logf("no IPv6 here: skipping listen %s", tc.cfg.Listen)
			continue
		}
		var log bytes.Buffer
		cfg := tc.cfg
		cfg.Root, cfg.DataListen = t.TempDir(), "127.0.0.1:0"
		cfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
		n, err := service.NewNode(cfg)
		if err != nil {
			t.Fatalf("NewNode(%s) = %v", tc.cfg.Listen, err)
		}
		n.Close()
		got := log.String()
		tlsOn, tokenOn := tc.cfg.TLS != nil, tc.cfg.AuthToken != ""
		switch {
		case tc.want == "" && got != "":
			t.Errorf("NewNode(listen %s, TLS %v, token %v) logged %q, want nothing", tc.cfg.Listen, tlsOn, tokenOn, got)
		case tc.want != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, tc.want)):
			t.Errorf("NewNode(listen %s, TLS %v, token %v) logged %q, want a warning that says %q", tc.cfg.Listen, tlsOn, tokenOn, got, tc.want)
		}
	}
}

// hasIPv6 reports whether this host can listen on IPv6 loopback.
func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
