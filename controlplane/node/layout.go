// layout.go names every path under the node's directory and reads what the node needs from the
// control plane's directory (its CA, admin kubeconfig and API server address).
package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
)

// layout is the node's directory. Everything the node writes, mounts or creates a socket in is
// under it, so that one sweep of it finds every mount left behind.
type layout struct {
	root                               string
	pki, logs                          string
	containerdRoot, containerdState    string
	containerdConfig, containerdSocket string
	cniConfDir, cniDataDir             string
	kubeletRoot, podLogs               string
	kubeletConfig, kubeletKubeconfig   string
}

func newLayout(root string) *layout {
	return &layout{
		root:              root,
		pki:               filepath.Join(root, "pki"),
		logs:              filepath.Join(root, "logs"),
		containerdRoot:    filepath.Join(root, "containerd", "root"),
		containerdState:   filepath.Join(root, "containerd", "state"),
		containerdConfig:  filepath.Join(root, "containerd", "config.toml"),
		containerdSocket:  filepath.Join(root, "containerd", "containerd.sock"),
		cniConfDir:        filepath.Join(root, "cni", "net.d"),
		cniDataDir:        filepath.Join(root, "cni", "ipam"),
		kubeletRoot:       filepath.Join(root, "kubelet"),
		podLogs:           filepath.Join(root, "pod-logs"),
		kubeletConfig:     filepath.Join(root, "kubelet-config.yaml"),
		kubeletKubeconfig: filepath.Join(root, "kubelet.kubeconfig"),
	}
}

func (l *layout) create() error {
	for _, dir := range []string{l.pki, l.logs, l.containerdRoot, l.containerdState, l.cniConfDir, l.cniDataDir, l.kubeletRoot, l.podLogs} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// controlPlane is what the node uses of a running control plane (controlplane/ at the
// repository's root writes these files).
type controlPlane struct {
	caCert, caKey    string
	adminKubeconfig  string
	server           string
	apiServerAddress string // host:port on loopback
}

func readControlPlane(dir string) (*controlPlane, error) {
	cp := &controlPlane{
		caCert:          filepath.Join(dir, "pki", "ca.crt"),
		caKey:           filepath.Join(dir, "pki", "ca.key"),
		adminKubeconfig: filepath.Join(dir, "admin.kubeconfig"),
	}
	for _, f := range []string{cp.caCert, cp.caKey, cp.adminKubeconfig} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s is not a running control plane's directory (start one with `make cluster`): %w", dir, err)
		}
	}
	config, err := clientcmd.BuildConfigFromFlags("", cp.adminKubeconfig)
	if err != nil {
		return nil, err
	}
	cp.server = config.Host
	u, err := url.Parse(config.Host)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf("API server address %q: %w", u.Host, err)
	}
	cp.apiServerAddress = u.Host
	return cp, nil
}
