package service

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// DataTLSMode says whether the data channel uses TLS (ferryd --data-tls).
type DataTLSMode int

const (
	// DataTLSFollow: TLS on the data channel exactly when the control
	// plane has it, with the same certificates.
	DataTLSFollow DataTLSMode = iota
	// DataTLSRequired: as DataTLSFollow, and a control plane without TLS
	// is a start-up error rather than a plaintext data channel.
	DataTLSRequired
	// DataTLSOff: a plaintext data channel, even beside a TLS control
	// plane: file contents and tickets cross the network in clear.
	DataTLSOff
)

var dataTLSNames = [...]string{DataTLSFollow: "follow", DataTLSRequired: "required", DataTLSOff: "off"}

func (m DataTLSMode) String() string {
	if m >= 0 && int(m) < len(dataTLSNames) {
		return dataTLSNames[m]
	}
	return fmt.Sprintf("DataTLSMode(%d)", int(m))
}

// ParseDataTLSMode reads "follow", "required" or "off".
func ParseDataTLSMode(s string) (DataTLSMode, error) {
	for m, name := range dataTLSNames {
		if s == name {
			return DataTLSMode(m), nil
		}
	}
	return 0, fmt.Errorf("want follow, required or off, not %q", s)
}

// dataTLS is the data plane's TLS configuration for mode beside the
// control plane's (nil when plaintext): the control plane's own, so
// that a renewed certificate reaches both channels.
func dataTLS(mode DataTLSMode, control *tls.Config) (*tls.Config, error) {
	switch {
	case mode == DataTLSOff:
		return nil, nil
	case mode == DataTLSRequired && control == nil:
		return nil, errors.New("--data-tls required: the data channel takes the control plane's certificate; set --tls-cert and --tls-key")
	case mode != DataTLSFollow && mode != DataTLSRequired:
		return nil, fmt.Errorf("unknown data TLS mode %v", mode)
	}
	return control, nil
}

// logDataTLS says how the data channel is secured, loudly when it is
// plaintext beside a TLS control plane.
func (n *Node) logDataTLS() {
	on := n.data.DataTLS()
	n.log.Info("data channel security", "data", n.dl.Addr().String(), "tls", on, "mode", n.cfg.DataTLS.String())
	if !on && n.cfg.TLS != nil {
		n.log.Warn("INSECURE: --data-tls off beside a TLS control plane: file contents and tickets cross the data channel in clear, "+
			"and anyone on the path can read or change them; clients refuse such offers unless told to accept plaintext data",
			"data", n.dl.Addr().String())
	}
}
