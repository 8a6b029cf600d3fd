package service

import "testing"

func TestPeerListAdmits(t *testing.T) {
	l, err := parsePeerList([]string{"10.0.0.0/8", " fd00::/8", "192.168.1.7", "Files.Example.",
		"*.ferry.ns.svc.cluster.local", "ferry-*.ferry-headless.ns.svc.cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "fd00::1": true, "192.168.1.7": true,
		"192.168.1.8": false, "11.0.0.1": false, "127.0.0.1": false, "::1": false,
		"files.example": true, "FILES.example.": true, "www.files.example": false,
		"ferry-0.ferry.ns.svc.cluster.local": true, "a.b.ferry.ns.svc.cluster.local": false,
		"ferry.ns.svc.cluster.local":                   false,
		"ferry-12.ferry-headless.ns.svc.cluster.local": true,
		"other-1.ferry-headless.ns.svc.cluster.local":  false,
	} {
		if _, err := l.admit(t.Context(), host); (err == nil) != want {
			t.Errorf("admit(%q) = %v, want admitted: %v", host, err, want)
		}
	}
	def, err := parsePeerList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "127.9.9.9": true, "::1": true, "10.0.0.1": false, "localhost": true} {
		if _, err := def.admit(t.Context(), host); (err == nil) != want {
			t.Errorf("default list: admit(%q) = %v, want admitted: %v", host, err, want)
		}
	}
}
