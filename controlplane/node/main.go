// Command node adds a real Kubernetes node to the local control plane: containerd and runc from
// the machine's packages, CNI's bridge plugin for a loopback-only pod network, and the upstream
// kubelet, kube-scheduler and a kube-controller-manager for the controllers a node needs, built
// from the same k8s.io/kubernetes module as the control plane.
//
// Like the control plane it is one binary with several roles, one process per component:
//
//	node run --controlplane-dir DIR --dir DIR   supervisor: certificates, network, containerd, then the children
//	node import --dir DIR FILE...              import OCI image archives into a running node's containerd
//	node kubelet ...                            the upstream kubelet command, unchanged
//	node kube-scheduler ...
//	node kube-controller-manager ...
//
// The supervisor writes DIR/ready once the Node is Ready and the pause image is imported, so the
// appearance of that file means "ready". SIGTERM or SIGINT, or end of file on standard input with
// --exit-on-stdin-close, stops every pod, the components and containerd, removes every mount
// under DIR and the bridge, then DIR itself.
package main

import (
	"context"
	"fmt"
	"os"

	"wasm-operator.dev/controlplane/internal/proc"

	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
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
			fmt.Fprintf(os.Stderr, "node: %v\n", err)
			os.Exit(1)
		}
	case "import":
		if err := runImport(rest); err != nil {
			fmt.Fprintf(os.Stderr, "node: %v\n", err)
			os.Exit(1)
		}
	case "kubelet":
		proc.RunComponent(kubelet.NewKubeletCommand(context.Background()), rest)
	case "kube-scheduler":
		proc.RunComponent(scheduler.NewSchedulerCommand(), rest)
	case "kube-controller-manager":
		proc.RunComponent(controllermanager.NewControllerManagerCommand(), rest)
	default:
		fmt.Fprintf(os.Stderr, "node: unknown role %q\n%s\n", role, usage)
		os.Exit(2)
	}
}

const usage = `usage: node run --controlplane-dir DIR --dir DIR [--exit-on-stdin-close]
       node import --dir DIR FILE...
       node kubelet|kube-scheduler|kube-controller-manager [upstream flags]`
