// Package validate checks Ferry's container image and Kubernetes manifests
// without a cluster or a Docker engine. It renders the kustomizations with
// `kubectl kustomize`, decodes every object strictly into its k8s.io/api
// type, checks the properties ferryd relies on (probes, ports and flags,
// the advertised pod IP, hardening, network policy), and parses
// deployments/Dockerfile so its tests can build the same binary the image
// holds and start it the way the StatefulSet would.
//
// It is a module of its own so that Ferry's main go.mod does not grow
// k8s.io dependencies. It does not talk to an API server, run admission
// or apiserver validation (names, ranges, immutability), or build images.
package validate
