// Command ring-controller-runtime is the ring example operator (docs/examples.md, "ring") written as
// a native controller-runtime operator, the baseline of the density benchmark (density/): one
// process per ring instance, reading TestResources in one namespace and carrying their nonce to
// the same name in the next.
//
//	ring-controller-runtime --in-namespace ring-0 --out-namespace ring-1 [--kubeconfig FILE]
//
// The namespace flags fall back to RING_IN_NAMESPACE and RING_OUT_NAMESPACE; the cluster is
// found as controller-runtime always finds it (--kubeconfig, registered by controller-runtime
// itself, then KUBECONFIG, in-cluster, ~/.kube/config).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// config is what one ring instance is started with.
type config struct {
	inNamespace, outNamespace string
}

// validate names every required setting that is missing, so one failed start says all that is wrong.
func (c config) validate() error {
	var missing []string
	if c.inNamespace == "" {
		missing = append(missing, "--in-namespace (RING_IN_NAMESPACE)")
	}
	if c.outNamespace == "" {
		missing = append(missing, "--out-namespace (RING_OUT_NAMESPACE)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("required: %s", strings.Join(missing, " and "))
}

func main() {
	var cfg config
	flag.StringVar(&cfg.inNamespace, "in-namespace", os.Getenv("RING_IN_NAMESPACE"), "the namespace whose TestResources are read")
	flag.StringVar(&cfg.outNamespace, "out-namespace", os.Getenv("RING_OUT_NAMESPACE"), "the namespace the nonces are carried to")
	flag.Parse()
	ctrl.SetLogger(zap.New())
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "ring-controller-runtime: %v\n", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("finding the cluster: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := addToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		// Only the in namespace is watched, like the Wasm ring's registration.
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{cfg.inNamespace: {}}},
		// N processes on one machine: no metrics or health listeners (they would share a port).
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	reconciler := &Reconciler{
		Cache:        mgr.GetClient(),
		Reader:       mgr.GetAPIReader(),
		Writer:       mgr.GetClient(),
		OutNamespace: cfg.outNamespace,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&TestResource{}).
		Named("ring").
		Complete(reconciler)
	if err != nil {
		return fmt.Errorf("creating the controller: %w", err)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return err
	}
	return nil
}
