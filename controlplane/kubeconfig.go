// kubeconfig.go writes the admin kubeconfig that clients (kubectl, kube-rs, the host) use.
package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
)

// writeKubeconfig writes atomically (temporary file, then rename) so that a reader never sees a
// half-written file.
func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: controlplane
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: admin@controlplane
  context:
    cluster: controlplane
    user: admin
    namespace: default
current-context: admin@controlplane
`, server, base64.StdEncoding.EncodeToString(caPEM), token)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
