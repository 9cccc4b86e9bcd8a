// supervisor.go owns the `run` role: it lays out the run directory, starts etcd in-process and the
// Kubernetes components as child processes, announces readiness by writing the kubeconfig, and
// tears everything down on SIGTERM, SIGINT, a dying child, or end of standard input. Between
// start and teardown it carries out the faults a harness asks for on the control socket
// (faults.go): the API server stopped and started, etcd restarted.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"wasm-operator.dev/controlplane/internal/clusternet"
	"wasm-operator.dev/controlplane/internal/proc"
)

// controllers are the kube-controller-manager loops that make API objects behave as users expect
// without a kubelet: namespaces finish terminating, owner references are garbage collected, every
// namespace gets its default ServiceAccount, and Deployments get ReplicaSets.
var controllers = []string{
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"deployment-controller",
	"replicaset-controller",
}

type options struct {
	dir              string
	kubeconfig       string
	exitOnStdinClose bool
	readyTimeout     time.Duration
	keepDir          bool
	controlSocket    string
}

// components are the parts a fault may stop and start again; the supervisor's loop owns them.
type components struct {
	etcd                         *embed.Etcd
	etcdDir                      string
	etcdClientPort, etcdPeerPort int
	// nil while a fault keeps it stopped.
	apiserver     *proc.Child
	apiserverArgs []string
	dir, server   string
	pki           *pkiFiles
	readyTimeout  time.Duration
}

func runSupervisor(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.dir, "dir", "", "run directory for data, keys and logs (required; removed on exit unless --keep-dir)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig once ready (default DIR/kubeconfig)")
	fs.BoolVar(&o.exitOnStdinClose, "exit-on-stdin-close", false, "stop when standard input reaches end of file (ties the control plane to its parent)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 120*time.Second, "how long to wait for /readyz")
	fs.BoolVar(&o.keepDir, "keep-dir", false, "keep the run directory on exit (for debugging)")
	fs.StringVar(&o.controlSocket, "control-socket", "", "Unix socket accepting faults to inject: \"stop kube-apiserver\", \"start kube-apiserver\", \"restart etcd\" (default DIR/control.sock)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.dir == "" {
		return errors.New("--dir is required")
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if o.kubeconfig == "" {
		o.kubeconfig = filepath.Join(dir, "kubeconfig")
	}
	if o.controlSocket == "" {
		o.controlSocket = filepath.Join(dir, "control.sock")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A kubeconfig left by an earlier run would announce readiness too early.
	_ = os.Remove(o.kubeconfig)
	if !o.keepDir {
		defer os.RemoveAll(dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.exitOnStdinClose {
		ctx = proc.CancelOnStdinEOF(ctx)
	}

	pki, err := generatePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fmt.Errorf("generating keys: %w", err)
	}
	ports, err := clusternet.FreeLoopbackPorts(4)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]

	c := &components{
		etcdDir:        filepath.Join(dir, "etcd"),
		etcdClientPort: etcdClientPort,
		etcdPeerPort:   etcdPeerPort,
		dir:            dir,
		pki:            pki,
		readyTimeout:   o.readyTimeout,
	}
	etcd, etcdURL, err := startEtcd(c.etcdDir, etcdClientPort, etcdPeerPort)
	if err != nil {
		return err
	}
	c.etcd = etcd
	defer func() { c.etcd.Close() }()

	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	c.server = server
	adminKubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(adminKubeconfig, server, pki.caPEM, pki.adminToken); err != nil {
		return err
	}

	c.apiserverArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--token-auth-file=" + pki.tokenFile,
		// Node: a kubelet (node/) may read and write only what concerns its own pods.
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + pki.kubeletClientCert,
		"--kubelet-client-key=" + pki.kubeletClientKey,
		"--kubelet-certificate-authority=" + pki.caCert,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPublicKey,
		"--service-account-signing-key-file=" + pki.saPrivateKey,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + clusternet.ServiceCIDR,
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--v=0",
	}
	if c.apiserver, err = proc.StartRole(dir, "kube-apiserver", c.apiserverArgs); err != nil {
		return err
	}
	defer func() {
		if c.apiserver != nil {
			c.apiserver.Stop(20 * time.Second)
		}
	}()
	if err := waitReady(ctx, server, pki.caPEM, pki.adminToken, o.readyTimeout, c.apiserver); err != nil {
		return err
	}

	kcm, err := proc.StartRole(dir, "kube-controller-manager", []string{
		"--kubeconfig=" + adminKubeconfig,
		"--authentication-kubeconfig=" + adminKubeconfig,
		"--authorization-kubeconfig=" + adminKubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", kcmPort),
		"--controllers=" + strings.Join(controllers, ","),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		// The apiserver has no front proxy, so there is no request-header CA to look up.
		"--authentication-skip-lookup=true",
		"--root-ca-file=" + pki.caCert,
		"--service-account-private-key-file=" + pki.saPrivateKey,
		"--v=0",
	})
	if err != nil {
		return err
	}
	defer kcm.Stop(20 * time.Second)

	// Written last and atomically: its existence is the readiness signal scripts wait for.
	if err := writeKubeconfig(o.kubeconfig, server, pki.caPEM, pki.adminToken); err != nil {
		return err
	}
	defer os.Remove(o.kubeconfig)
	fmt.Printf("controlplane ready: server %s, kubeconfig %s, logs in %s\n", server, o.kubeconfig, dir)

	faults := make(chan faultRequest)
	closeSocket, err := serveFaults(ctx, o.controlSocket, faults)
	if err != nil {
		return err
	}
	defer closeSocket()

	for {
		// A nil channel never receives: a stopped API server cannot "exit".
		var apiserverExited chan error
		if c.apiserver != nil {
			apiserverExited = c.apiserver.Exited
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-apiserverExited:
			return c.apiserver.ExitError(err)
		case err := <-kcm.Exited:
			return kcm.ExitError(err)
		case err := <-c.etcd.Err():
			return fmt.Errorf("etcd failed: %w", err)
		case request := <-faults:
			request.reply <- c.inject(ctx, request.command)
		}
	}
}

// inject carries out one fault command. A component that does not come back is reported to the
// caller; the supervisor keeps running so that the harness can say what happened.
func (c *components) inject(ctx context.Context, command string) error {
	switch command {
	case stopAPIServer:
		if c.apiserver == nil {
			return errors.New("kube-apiserver is already stopped")
		}
		c.apiserver.Stop(20 * time.Second)
		c.apiserver = nil
		return nil
	case startAPIServer:
		if c.apiserver != nil {
			return errors.New("kube-apiserver is already running")
		}
		apiserver, err := proc.StartRole(c.dir, "kube-apiserver", c.apiserverArgs)
		if err != nil {
			return err
		}
		c.apiserver = apiserver
		return waitReady(ctx, c.server, c.pki.caPEM, c.pki.adminToken, c.readyTimeout, apiserver)
	case restartEtcd:
		c.etcd.Close()
		etcd, _, err := startEtcd(c.etcdDir, c.etcdClientPort, c.etcdPeerPort)
		if err != nil {
			return err
		}
		c.etcd = etcd
		return nil
	default:
		return fmt.Errorf("unknown command %q (known: %q, %q, %q)", command, stopAPIServer, startAPIServer, restartEtcd)
	}
}

func waitReady(ctx context.Context, server string, caPEM []byte, token string, timeout time.Duration, apiserver *proc.Child) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	deadline := time.Now().Add(timeout)
	lastErr := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastErr = fmt.Errorf("/readyz returned %d: %s", resp.StatusCode, lastLine(string(body)))
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted while waiting for kube-apiserver")
		case err := <-apiserver.Exited:
			return fmt.Errorf("while starting: %w", apiserver.ExitError(err))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready within %s: %v (see %s)", timeout, lastErr, apiserver.LogPath)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
