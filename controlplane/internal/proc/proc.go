// Package proc runs the local cluster's components as child processes: each with its own log
// file, killed by the kernel if its supervisor dies (PR_SET_PDEATHSIG), stopped gracefully with
// SIGTERM and then SIGKILL.
package proc

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Child is one running component.
type Child struct {
	Name    string
	LogPath string
	// Exited receives the process's exit once, when it ends.
	Exited chan error
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartRole runs this same executable with a role as its first argument (the control plane and
// the node are one binary each, one process per Kubernetes component, because the components
// keep global state: flags, feature gates, metric registries, signal handlers). The log is
// DIR/ROLE.log.
func StartRole(dir, role string, args []string) (*Child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return Start(role, filepath.Join(dir, role+".log"), self, append([]string{role}, args...))
}

// Start runs path with args, standard output and error going to logPath.
func Start(name, logPath, path string, args []string) (*Child, error) {
	// Appended to: a component started again after a fault keeps its earlier log.
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the supervisor dies without cleaning up (SIGKILL), the kernel stops the child too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &Child{Name: name, LogPath: logPath, Exited: make(chan error, 1), cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		close(c.done)
		c.Exited <- err
	}()
	return c, nil
}

// Stop asks the child to shut down with SIGTERM and kills it if it has not gone within grace.
// It returns once the process has ended.
func (c *Child) Stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// ExitError describes why a child ended, naming its log.
func (c *Child) ExitError(err error) error {
	return fmt.Errorf("%s exited: %v (see %s)", c.Name, err, c.LogPath)
}

// RunComponent runs an upstream component's command (kube-apiserver, kubelet, ...) with args,
// unchanged, and exits with status 1 if it fails (the command has printed why).
func RunComponent(cmd *cobra.Command, args []string) {
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}

// CancelOnStdinEOF returns a context cancelled when standard input reaches end of file: a
// supervisor started with a pipe as its standard input stops when its parent goes away.
func CancelOnStdinEOF(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx
}
