// Command controlplane runs a real Kubernetes control plane on loopback for tests and the demo:
// embedded etcd, kube-apiserver and a small kube-controller-manager, all built from Go modules.
//
// It is one binary with three roles so that each Kubernetes component gets a process of its own
// (they keep global state: flags, feature gates, metric registries, signal handlers):
//
//	controlplane run --dir DIR        supervisor: keys, certificates, etcd, then the two children
//	controlplane kube-apiserver ...   the upstream kube-apiserver command, unchanged
//	controlplane kube-controller-manager ...
//
// The supervisor writes the admin kubeconfig only once /readyz answers, so the appearance of
// that file means "ready". SIGTERM or SIGINT, or end of file on standard input when started with
// --exit-on-stdin-close, stops everything and removes the data directory.
package main

import (
	"fmt"
	"os"

	"wasm-operator.dev/controlplane/internal/proc"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	role, rest := os.Args[1], os.Args[2:]
	switch role {
	case "run":
		if err := runSupervisor(rest); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
			os.Exit(1)
		}
	case "kube-apiserver":
		proc.RunComponent(apiserver.NewAPIServerCommand(), rest)
	case "kube-controller-manager":
		proc.RunComponent(controllermanager.NewControllerManagerCommand(), rest)
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown role %q\n%s\n", role, usage)
		os.Exit(2)
	}
}

const usage = `usage: controlplane run --dir DIR [--kubeconfig PATH] [--exit-on-stdin-close]
       controlplane kube-apiserver|kube-controller-manager [upstream flags]`
