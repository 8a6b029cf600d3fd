package validate

import (
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	env := &Env{}
	env.Set("FERRY_LISTEN", "0.0.0.0:1")
	env.Set("FERRY_LOG_FORMAT", "json")
	s, err := Resolve([]string{"--listen=0.0.0.0:2", "-root", "/data", "--version=false"}, env)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"listen": "0.0.0.0:2", "root": "/data", "log-format": "json", "data-listen": "127.0.0.1:7071", "version": "false",
	} {
		if s[name] != want {
			t.Errorf("Resolve: %s = %q, want %q", name, s[name], want)
		}
	}
	if d, _ := s.Duration("shutdown-grace"); d.String() != "20s" {
		t.Errorf("Resolve: shutdown-grace = %v, want ferryd's 20s for 0", d)
	}
}

func TestResolveRepeatable(t *testing.T) {
	env := &Env{}
	env.Set("FERRY_ALLOW_PEER", "10.0.0.0/8")
	s, err := Resolve([]string{"--allow-peer=a.example", "--allow-peer", "*.b.example,fd00::/8"}, env)
	if want := "a.example,*.b.example,fd00::/8"; err != nil || s["allow-peer"] != want {
		t.Errorf("Resolve(--allow-peer twice) = %q, %v; want %q (the flags add up, the env is unused)", s["allow-peer"], err, want)
	}
	if s, _ := Resolve(nil, env); s["allow-peer"] != "10.0.0.0/8" {
		t.Errorf("Resolve(FERRY_ALLOW_PEER only) = %q, want the env's", s["allow-peer"])
	}
}

func TestResolveRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-crt=/x"},
		{"--listen"},
		{"serve"},
		{"--root=/data", "--", "x"},
	} {
		if _, err := Resolve(args, &Env{}); err == nil {
			t.Errorf("Resolve(%q) = nil error, want one (ferryd would exit 2)", args)
		}
	}
}

func TestSetFlag(t *testing.T) {
	env := &Env{}
	env.Set("FERRY_DATA_LISTEN", "0.0.0.0:7071")
	args, err := SetFlag([]string{"-listen", "0.0.0.0:7070", "--root=/data"}, env, "listen", "127.0.0.1:0")
	if want := []string{"--listen=127.0.0.1:0", "--root=/data"}; err != nil || !slices.Equal(args, want) {
		t.Errorf("SetFlag(listen in args) = %q, %v; want %q", args, err, want)
	}
	args, _ = SetFlag(args, env, "data-listen", "127.0.0.1:0")
	if v, _ := env.Lookup("FERRY_DATA_LISTEN"); v != "127.0.0.1:0" || len(args) != 2 {
		t.Errorf("SetFlag(data-listen in env) = %q, env %q", args, v)
	}
	args, _ = SetFlag(args, env, "advertise-data", "h")
	if args[len(args)-1] != "--advertise-data=h" {
		t.Errorf("SetFlag(advertise-data, unset) = %q, want it appended", args)
	}
}
