// pki.go owns the key material the control plane needs: a CA (its key kept so that a node can be
// added later, see node/), the API server's serving certificate, its client certificate for
// the kubelet, the service-account signing key pair (so TokenRequest works) and the admin
// bearer token.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"wasm-operator.dev/controlplane/internal/certs"
	"wasm-operator.dev/controlplane/internal/clusternet"
)

// pkiFiles are the paths of everything generatePKI writes under its directory. The node reads
// the CA from the same names (node/pki.go).
type pkiFiles struct {
	caCert, caKey                       string
	servingCert, servingKey             string
	kubeletClientCert, kubeletClientKey string
	saPublicKey, saPrivateKey           string
	tokenFile                           string
	adminToken                          string
	caPEM                               []byte
}

func generatePKI(dir string) (*pkiFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f := &pkiFiles{
		caCert:            filepath.Join(dir, "ca.crt"),
		caKey:             filepath.Join(dir, "ca.key"),
		servingCert:       filepath.Join(dir, "apiserver.crt"),
		servingKey:        filepath.Join(dir, "apiserver.key"),
		kubeletClientCert: filepath.Join(dir, "apiserver-kubelet-client.crt"),
		kubeletClientKey:  filepath.Join(dir, "apiserver-kubelet-client.key"),
		saPublicKey:       filepath.Join(dir, "sa.pub"),
		saPrivateKey:      filepath.Join(dir, "sa.key"),
		tokenFile:         filepath.Join(dir, "tokens.csv"),
	}

	ca, err := certs.NewAuthority("wasm-operator-controlplane-ca")
	if err != nil {
		return nil, err
	}
	if err := ca.Save(f.caCert, f.caKey); err != nil {
		return nil, err
	}
	f.caPEM = ca.CertPEM

	// Clients on the machine use 127.0.0.1; pods use the `kubernetes` Service's address and names.
	serving := certs.Leaf{
		CommonName: "kube-apiserver",
		IPs:        []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), clusternet.KubernetesServiceIP},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	if err := ca.Issue(serving, f.servingCert, f.servingKey); err != nil {
		return nil, err
	}
	// How the API server authenticates to a kubelet (logs, exec, port-forward).
	kubeletClient := certs.Leaf{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}}
	if err := ca.Issue(kubeletClient, f.kubeletClientCert, f.kubeletClientKey); err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := certs.WritePEM(f.saPublicKey, "PUBLIC KEY", saPub); err != nil {
		return nil, err
	}
	if err := certs.WritePEM(f.saPrivateKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return nil, err
	}

	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	f.adminToken = hex.EncodeToString(token)
	// token,user,uid,"group1,group2": the admin is in system:masters, which RBAC always allows.
	line := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", f.adminToken)
	if err := os.WriteFile(f.tokenFile, []byte(line), 0o600); err != nil {
		return nil, err
	}
	return f, nil
}
