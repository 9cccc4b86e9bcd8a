// containerd.go runs the machine's containerd (Debian's package) for the node, imports images
// into the namespace the CRI plugin uses, and on shutdown stops and removes every pod sandbox
// through the CRI, the way the kubelet would, so that their network namespaces, veths and
// mounts go with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	remote "k8s.io/cri-client/pkg"

	"wasm-operator.dev/controlplane/internal/proc"
)

// criNamespace is the containerd namespace the CRI plugin keeps Kubernetes' images and
// containers in.
const criNamespace = "k8s.io"

func startContainerd(ctx context.Context, l *layout) (*proc.Child, error) {
	if err := writeContainerdConfig(l); err != nil {
		return nil, err
	}
	child, err := proc.Start("containerd", l.logs+"/containerd.log", "containerd", []string{"--config", l.containerdConfig})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if conn, err := net.Dial("unix", l.containerdSocket); err == nil {
			conn.Close()
			return child, nil
		}
		select {
		case err := <-child.Exited:
			return nil, fmt.Errorf("while starting: %w", child.ExitError(err))
		case <-ctx.Done():
			child.Stop(10 * time.Second)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			child.Stop(10 * time.Second)
			return nil, fmt.Errorf("containerd did not open %s within 60s (see %s)", l.containerdSocket, child.LogPath)
		}
	}
}

// importImage loads an OCI image archive (scripts/node.sh builds them with controlplane's
// ociimage) into the CRI's namespace, unpacked for its snapshotter, as `kind load` does.
func importImage(ctx context.Context, l *layout, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", l.containerdSocket, "--namespace", criNamespace,
		"images", "import", "--snapshotter", "overlayfs", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s: %v: %s", archive, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runImport is the `import` role: images loaded into a node that is already running (the same
// import as the supervisor's at start).
func runImport(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	dir := fs.String("dir", "", "the running node's directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() == 0 {
		return errors.New("usage: node import --dir DIR FILE...")
	}
	l := newLayout(*dir)
	for _, archive := range fs.Args() {
		if err := importImage(context.Background(), l, archive); err != nil {
			return err
		}
	}
	return nil
}

// removeAllPods stops and removes every pod sandbox (and so every container) through the CRI.
// Failures are reported and the sweeps that follow catch what is left.
func removeAllPods(l *layout) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runtime, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint("unix://" + l.containerdSocket).
		WithConnectionTimeout(10 * time.Second).
		WithTracerProvider(noop.NewTracerProvider()).
		Build(ctx)
	if err != nil {
		fmt.Printf("node: connecting to the CRI to remove pods: %v\n", err)
		return
	}
	defer runtime.Close(ctx)
	sandboxes, err := runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Printf("node: listing pod sandboxes: %v\n", err)
		return
	}
	for _, sandbox := range sandboxes {
		if err := runtime.StopPodSandbox(ctx, sandbox.Id); err != nil {
			fmt.Printf("node: stopping pod sandbox %s: %v\n", sandbox.Id, err)
		}
		if err := runtime.RemovePodSandbox(ctx, sandbox.Id); err != nil {
			fmt.Printf("node: removing pod sandbox %s: %v\n", sandbox.Id, err)
		}
	}
}
