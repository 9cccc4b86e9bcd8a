// faults.go owns the control socket, through which a test harness injects faults into a running
// control plane: the API server stopped and started again (etcd keeps running), or etcd
// restarted. One command per connection, one line each way: the command, then "ok" or
// "error: <why>". The supervisor's loop carries the commands out (it owns the components); this
// file only moves them between the socket and that loop.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// The commands the control socket accepts.
const (
	stopAPIServer  = "stop kube-apiserver"
	startAPIServer = "start kube-apiserver"
	restartEtcd    = "restart etcd"
)

type faultRequest struct {
	command string
	reply   chan error
}

// serveFaults listens on the Unix socket at path (mode 0600: only the supervisor's user may
// break its control plane) and sends every command it receives to requests. The returned
// function closes the socket.
func serveFaults(ctx context.Context, path string, requests chan<- faultRequest) (func(), error) {
	_ = os.Remove(path)
	listener, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		listener.Close()
		return nil, err
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go answerFault(ctx, conn, requests)
		}
	}()
	return func() { listener.Close(); _ = os.Remove(path) }, nil
}

func answerFault(ctx context.Context, conn net.Conn, requests chan<- faultRequest) {
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	request := faultRequest{command: strings.TrimSpace(line), reply: make(chan error, 1)}
	var answer error
	select {
	case requests <- request:
		select {
		case answer = <-request.reply:
		case <-ctx.Done():
			answer = errors.New("the control plane is stopping")
		}
	case <-ctx.Done():
		answer = errors.New("the control plane is stopping")
	}
	if answer != nil {
		fmt.Fprintf(conn, "error: %v\n", answer)
	} else {
		fmt.Fprintln(conn, "ok")
	}
}
