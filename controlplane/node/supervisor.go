// supervisor.go owns the `run` role: it checks the machine, lays out the node's directory, brings
// up the pod network, containerd and the Kubernetes components in order, announces readiness by
// writing DIR/ready once the Node is Ready, and tears everything down again in reverse order.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"wasm-operator.dev/controlplane/internal/clusternet"
	"wasm-operator.dev/controlplane/internal/proc"
)

// nodeControllers are the kube-controller-manager loops a cluster with a node needs on top of
// the control plane's: the Node's `not-ready` taint (added when it registers) goes once it is
// Ready, every namespace gets the `kube-root-ca.crt` ConfigMap that pods' service account
// volumes mount, and pods of a Node that is gone are garbage collected. They run here, not in
// the control plane, so that a cluster without a node stays exactly as it was.
var nodeControllers = []string{
	"node-lifecycle-controller",
	"root-ca-certificate-publisher-controller",
	"pod-garbage-collector-controller",
}

type options struct {
	controlplaneDir  string
	dir              string
	name             string
	images           stringList
	exitOnStdinClose bool
	readyTimeout     time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runSupervisor(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.controlplaneDir, "controlplane-dir", "", "the control plane's run directory (its pki/ and admin.kubeconfig; required)")
	fs.StringVar(&o.dir, "dir", "", "the node's directory for certificates, containerd, the kubelet and logs (required; removed on exit)")
	fs.StringVar(&o.name, "name", "wasm-operator-node", "the Node's name")
	fs.Var(&o.images, "image", "an OCI image archive to import before the kubelet starts (repeatable; the pause image must be one)")
	fs.BoolVar(&o.exitOnStdinClose, "exit-on-stdin-close", false, "stop when standard input reaches end of file (ties the node to its parent)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 180*time.Second, "how long to wait for the Node to be Ready")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.controlplaneDir == "" || o.dir == "" {
		return errors.New("--controlplane-dir and --dir are required")
	}
	var err error
	if o.controlplaneDir, err = filepath.Abs(o.controlplaneDir); err != nil {
		return err
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}
	if err := preflight(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if o.exitOnStdinClose {
		ctx = proc.CancelOnStdinEOF(ctx)
	}
	// Everything started is stopped in reverse order, whether start-up finished or not.
	var teardown []func()
	defer func() {
		for i := len(teardown) - 1; i >= 0; i-- {
			teardown[i]()
		}
	}()
	layout := newLayout(o.dir)
	// A node killed with SIGKILL leaves its containers' shims running and its mounts in place
	// (its components die with it); they go before anything new starts in the same directory.
	killStrayShims(layout)
	removeNodeDir(o.dir)
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	teardown = append(teardown, func() { removeNodeDir(o.dir) })

	cp, err := readControlPlane(o.controlplaneDir)
	if err != nil {
		return err
	}
	if err := layout.create(); err != nil {
		return err
	}
	ports, err := clusternet.FreeLoopbackPorts(4)
	if err != nil {
		return err
	}
	kubeletPort, kubeletHealthzPort, schedulerPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	if err := writeKubeletCredentials(cp, layout, o.name); err != nil {
		return err
	}

	if err := createBridge(); err != nil {
		return err
	}
	teardown = append(teardown, deleteBridge)
	proxy, err := startAPIServerProxy(cp.apiServerAddress)
	if err != nil {
		return err
	}
	teardown = append(teardown, func() { proxy.Close() })

	if err := writeCNIConfig(layout); err != nil {
		return err
	}
	containerd, err := startContainerd(ctx, layout)
	if err != nil {
		return err
	}
	teardown = append(teardown, func() {
		removeAllPods(layout)
		containerd.Stop(30 * time.Second)
		killStrayShims(layout)
		removeShimSocketDir()
		unmountUnder(o.dir)
		removeKubepodsCgroups()
	})
	for _, image := range o.images {
		if err := importImage(ctx, layout, image); err != nil {
			return err
		}
	}

	kcm, err := proc.StartRole(layout.logs, "kube-controller-manager", []string{
		"--kubeconfig=" + cp.adminKubeconfig,
		"--authentication-kubeconfig=" + cp.adminKubeconfig,
		"--authorization-kubeconfig=" + cp.adminKubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", kcmPort),
		"--controllers=" + strings.Join(nodeControllers, ","),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--authentication-skip-lookup=true",
		"--root-ca-file=" + cp.caCert,
		"--v=0",
	})
	if err != nil {
		return err
	}
	teardown = append(teardown, func() { kcm.Stop(20 * time.Second) })
	scheduler, err := proc.StartRole(layout.logs, "kube-scheduler", []string{
		"--kubeconfig=" + cp.adminKubeconfig,
		"--authentication-kubeconfig=" + cp.adminKubeconfig,
		"--authorization-kubeconfig=" + cp.adminKubeconfig,
		"--authentication-skip-lookup=true",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", schedulerPort),
		"--leader-elect=false",
		"--v=0",
	})
	if err != nil {
		return err
	}
	teardown = append(teardown, func() { scheduler.Stop(20 * time.Second) })

	if err := writeKubeletConfig(cp, layout, kubeletPort, kubeletHealthzPort); err != nil {
		return err
	}
	// The kubelet sets a few kernel parameters every Kubernetes node has (see sysctl.go); they
	// are put back when the node stops.
	saved := saveKernelTunables()
	teardown = append(teardown, saved.restore)
	kubelet, err := proc.StartRole(layout.logs, "kubelet", []string{
		"--config=" + layout.kubeletConfig,
		"--kubeconfig=" + layout.kubeletKubeconfig,
		"--root-dir=" + layout.kubeletRoot,
		"--hostname-override=" + o.name,
		"--node-ip=" + nodeIP(),
		"--v=0",
	})
	if err != nil {
		return err
	}
	teardown = append(teardown, func() {
		kubelet.Stop(20 * time.Second)
		deleteNode(cp, o.name)
	})

	exited := firstExit([]*proc.Child{containerd, kcm, scheduler, kubelet})
	if err := waitNodeReady(ctx, cp, o.name, o.readyTimeout, exited); err != nil {
		return err
	}
	readyFile := filepath.Join(o.dir, "ready")
	if err := os.WriteFile(readyFile, []byte(layout.containerdSocket+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Printf("node %s ready: containerd at %s, logs in %s\n", o.name, layout.containerdSocket, layout.logs)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return err
	}
}

// firstExit reports the first child that ends, as an error naming its log.
func firstExit(children []*proc.Child) <-chan error {
	exited := make(chan error, len(children))
	for _, c := range children {
		go func(c *proc.Child) {
			exited <- c.ExitError(<-c.Exited)
		}(c)
	}
	return exited
}
