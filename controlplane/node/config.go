// config.go writes the node's configuration files: the kubelet's certificates, kubeconfig and
// KubeletConfiguration, containerd's config.toml and the CNI network list.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"wasm-operator.dev/controlplane/internal/certs"
	"wasm-operator.dev/controlplane/internal/clusternet"
)

// pauseImage is the pod sandbox image, built on the machine (scripts/node.sh) and imported at
// start: nothing is ever pulled.
const pauseImage = "localhost/wasm-operator/pause:1"

func nodeIP() string { return clusternet.NodeIP.String() }

// writeKubeletCredentials issues the kubelet's client certificate (user system:node:NAME in
// group system:nodes, which the Node authorizer and NodeRestriction admission expect) and its
// serving certificate for the node's address, both from the control plane's CA, so that the API
// server verifies the kubelet it connects to for logs and exec.
func writeKubeletCredentials(cp *controlPlane, l *layout, name string) error {
	ca, err := certs.LoadAuthority(cp.caCert, cp.caKey)
	if err != nil {
		return err
	}
	client := certs.Leaf{CommonName: "system:node:" + name, Organizations: []string{"system:nodes"}}
	if err := ca.Issue(client, filepath.Join(l.pki, "kubelet-client.crt"), filepath.Join(l.pki, "kubelet-client.key")); err != nil {
		return err
	}
	serving := certs.Leaf{CommonName: name, IPs: []net.IP{clusternet.NodeIP}, DNSNames: []string{name}}
	if err := ca.Issue(serving, filepath.Join(l.pki, "kubelet.crt"), filepath.Join(l.pki, "kubelet.key")); err != nil {
		return err
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: controlplane
  cluster: {server: %q, certificate-authority: %q}
users:
- name: kubelet
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: kubelet
  context: {cluster: controlplane, user: kubelet}
current-context: kubelet
`, cp.server, cp.caCert, filepath.Join(l.pki, "kubelet-client.crt"), filepath.Join(l.pki, "kubelet-client.key"))
	return os.WriteFile(l.kubeletKubeconfig, []byte(kubeconfig), 0o600)
}

// writeKubeletConfig writes the KubeletConfiguration. The choices that differ from a
// production node, and why:
//   - cgroupfs driver and failCgroupV1: false: the machine has no systemd and mounts cgroup v1;
//   - failSwapOn: false: the kubelet must not refuse a machine that has swap;
//   - eviction and image garbage collection thresholds near zero: a shared machine's disk is
//     often fuller than a node's, and evicting test pods for it would only make tests flaky;
//   - every listener on the node's own address or loopback, every path under the node's directory.
func writeKubeletConfig(cp *controlPlane, l *layout, port, healthzPort int) error {
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: %q
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 32
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, nodefs.inodesFree: 1%%, imagefs.available: 1%%}
`, nodeIP(), port, healthzPort,
		filepath.Join(l.pki, "kubelet.crt"), filepath.Join(l.pki, "kubelet.key"), cp.caCert,
		l.containerdSocket, l.podLogs)
	return os.WriteFile(l.kubeletConfig, []byte(config), 0o600)
}

// writeContainerdConfig writes containerd's configuration: its own root, state and socket under
// the node's directory (so it never meets a containerd the machine may run; runc's state too,
// only the shims' sockets go to containerd's fixed /run/containerd/s, removed when empty), the CRI plugin
// with runc under the cgroupfs driver, the local pause image, CNI plugins from the machine's
// containernetworking-plugins package, and network namespaces mounted under the state directory.
// restrict_oom_score_adj keeps containers' OOM score adjustments at or above containerd's own:
// lowering one needs CAP_SYS_RESOURCE, which machines such as CI sandboxes often withhold (the
// pod sandbox's usual -998 then fails every pod with runc's "failed to update
// /proc/self/oom_score_adj: Permission denied").
func writeContainerdConfig(l *layout) error {
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, l.containerdRoot, l.containerdState, l.containerdSocket, l.containerdSocket+".ttrpc",
		filepath.Join(l.root, "containerd", "opt"), pauseImage, filepath.Join(l.containerdState, "runc"),
		cniBinDir, l.cniConfDir)
	return os.WriteFile(l.containerdConfig, []byte(config), 0o600)
}

// writeCNIConfig writes the pod network: one bridge with the node's address as gateway, and
// routes to the Service range only. There is no default route, no masquerading, and the
// machine does not forward, so a pod can reach the machine and other pods, never beyond.
func writeCNIConfig(l *layout) error {
	config := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "wasm-operator-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": %q}]
      }
    }
  ]
}
`, bridgeName, l.cniDataDir, clusternet.PodCIDR, clusternet.NodeIP.String(), clusternet.ServiceCIDR)
	return os.WriteFile(filepath.Join(l.cniConfDir, "10-wasm-operator.conflist"), []byte(config), 0o600)
}
