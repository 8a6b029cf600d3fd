// Package service is Ferry's control plane: the gRPC TransferService, the
// server that hosts it (interceptors, health, reflection, limits) and the
// Node that runs it beside the data plane with a graceful shutdown.
//
// It is a thin adapter in the etcd style: check the request, call the data
// plane (package transfer), map the outcome to a gRPC status in one place
// (status.go). It does not move bytes, parse the data channel or touch
// files outside the served root; clients live in package client.
//
// It secures the control plane only: TLS or mutual TLS, and a bearer token
// on every TransferService call (health and reflection stay open). The
// data channel stays plaintext; its one-time ticket is its only key.
package service
