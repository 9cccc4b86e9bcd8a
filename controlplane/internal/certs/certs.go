// Package certs issues the X.509 material of the local cluster: one CA, saved beside the control
// plane's other keys, and the serving and client certificates it signs for the API server, the
// kubelet and the API server's connections to the kubelet.
package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// validity covers any test run or demo; the material is thrown away with the cluster.
const validity = 365 * 24 * time.Hour

// Authority is the cluster CA.
type Authority struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	CertPEM []byte
}

// NewAuthority creates a self-signed CA.
func NewAuthority(commonName string) (*Authority, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{cert: cert, key: key, CertPEM: encode("CERTIFICATE", der)}, nil
}

// LoadAuthority reads a CA written by Save.
func LoadAuthority(certPath, keyPath string) (*Authority, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("%s or %s holds no PEM block", certPath, keyPath)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &Authority{cert: cert, key: key, CertPEM: certPEM}, nil
}

// Save writes the CA certificate and key (mode 0600).
func (a *Authority) Save(certPath, keyPath string) error {
	if err := os.WriteFile(certPath, a.CertPEM, 0o600); err != nil {
		return err
	}
	return WritePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a.key))
}

// Leaf describes a certificate to issue. A Leaf with IPs or DNSNames is a serving certificate,
// one without is a client certificate; Kubernetes reads a client's user from CommonName and its
// groups from Organizations.
type Leaf struct {
	CommonName    string
	Organizations []string
	IPs           []net.IP
	DNSNames      []string
}

// Issue signs a new key pair for leaf and writes certificate and key (mode 0600).
func (a *Authority) Issue(leaf Leaf, certPath, keyPath string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	usage := x509.ExtKeyUsageClientAuth
	if len(leaf.IPs) > 0 || len(leaf.DNSNames) > 0 {
		usage = x509.ExtKeyUsageServerAuth
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: leaf.CommonName, Organization: leaf.Organizations},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  leaf.IPs,
		DNSNames:     leaf.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return err
	}
	if err := WritePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return WritePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

// WritePEM writes one PEM block, readable by its owner only.
func WritePEM(path, blockType string, der []byte) error {
	if len(der) == 0 {
		return errors.New("nothing to write to " + path)
	}
	return os.WriteFile(path, encode(blockType, der), 0o600)
}

func encode(blockType string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
}

// serial is random so that certificates issued by separate processes never share one.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return n
}
