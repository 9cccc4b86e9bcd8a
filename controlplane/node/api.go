// api.go is what the supervisor asks the API server: whether its Node is Ready, and to delete
// the Node when it stops.
package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func adminClient(cp *controlPlane) (*kubernetes.Clientset, error) {
	config, err := clientcmd.BuildConfigFromFlags("", cp.adminKubeconfig)
	if err != nil {
		return nil, err
	}
	config.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(config)
}

// waitNodeReady polls the Node until its Ready condition is True, a component exits, or the
// timeout passes (then the last condition message says why).
func waitNodeReady(ctx context.Context, cp *controlPlane, name string, timeout time.Duration, exited <-chan error) error {
	client, err := adminClient(cp)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := "not registered yet"
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type != corev1.NodeReady {
					continue
				}
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				last = fmt.Sprintf("Ready=%s: %s", c.Status, c.Message)
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("while waiting for node %s to be Ready: %w", name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready within %s: %s", name, timeout, last)
		}
	}
}

// deleteNode removes the Node object so that a stopped node does not linger NotReady. Best
// effort: the control plane may already be gone.
func deleteNode(cp *controlPlane, name string) {
	client, err := adminClient(cp)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
}
