// Package clusternet names the local cluster's address ranges, shared by the control plane
// (Service range, the API server's certificate) and the node (pod network, the `kubernetes`
// Service's address). Both ranges are used by nothing else on the machine and never routed
// off it: the pod network has no default route and the host does not forward.
package clusternet

import (
	"fmt"
	"net"
)

const (
	// ServiceCIDR is the API server's --service-cluster-ip-range.
	ServiceCIDR = "10.96.0.0/16"
	// PodCIDR is the node's pod network, one bridge.
	PodCIDR = "10.244.0.0/24"
	// PodPrefixLength is PodCIDR's prefix length, for the bridge's address.
	PodPrefixLength = 24
)

var (
	// KubernetesServiceIP is the first address of ServiceCIDR: the API server allocates it to
	// the `kubernetes` Service, and pods find the API server there (KUBERNETES_SERVICE_HOST).
	KubernetesServiceIP = net.IPv4(10, 96, 0, 1)
	// NodeIP is the bridge's address on the machine: the pods' gateway, the node's InternalIP
	// (where the API server reaches the kubelet) and where pods reach the `kubernetes` Service.
	NodeIP = net.IPv4(10, 244, 0, 1)
)

// FreeLoopbackPorts asks the kernel for n distinct free loopback ports. They are released before
// use, so another process could take one in between; the component then fails to bind and its
// log says so.
func FreeLoopbackPorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
