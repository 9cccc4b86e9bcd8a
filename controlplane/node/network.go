// network.go owns the node's pod network on the machine: the bridge pods attach to (created
// here, not by the CNI plugin, so that the address pods find the API server at exists before
// the first pod) and the proxy that stands in for kube-proxy for the one Service pods need, the
// API server's `kubernetes` Service.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"wasm-operator.dev/controlplane/internal/clusternet"
)

const bridgeName = "wop0"

// bridgeMAC is the bridge's own hardware address (locally administered). A Linux bridge
// without one set takes the lowest address of its ports, so it changes whenever a pod's veth
// with a lower one comes or the lowest one goes; every pod that cached the gateway's old
// address in its ARP table is then cut off (its frames go to an address nobody owns) until
// that entry expires, half a minute later. With an address of its own it never changes.
const bridgeMAC = "02:77:6f:70:00:01"

// createBridge creates wop0 with the node's address (the pods' gateway) and the `kubernetes`
// Service's address. A bridge left by a node that was killed is removed first.
func createBridge() error {
	deleteBridge()
	commands := [][]string{
		{"link", "add", bridgeName, "address", bridgeMAC, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", clusternet.NodeIP, clusternet.PodPrefixLength), "dev", bridgeName},
		{"addr", "add", clusternet.KubernetesServiceIP.String() + "/32", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	}
	for _, args := range commands {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			deleteBridge()
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// deleteBridge removes wop0 if it exists; the pods' veth ends go with their namespaces.
func deleteBridge() {
	if _, err := net.InterfaceByName(bridgeName); err != nil {
		return
	}
	_ = exec.Command("ip", "link", "del", bridgeName).Run()
}

// apiServerProxy forwards TCP from the `kubernetes` Service's address, port 443, to the API
// server on loopback: the one thing kube-proxy would do here. The API server keeps listening
// on loopback only, and TLS passes through untouched (its certificate names the Service's
// address).
type apiServerProxy struct {
	listener net.Listener
	target   string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startAPIServerProxy(target string) (*apiServerProxy, error) {
	address := net.JoinHostPort(clusternet.KubernetesServiceIP.String(), strconv.Itoa(443))
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening for the kubernetes Service on %s: %w", address, err)
	}
	p := &apiServerProxy{listener: listener, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *apiServerProxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		p.wg.Add(1)
		go p.forward(conn)
	}
}

func (p *apiServerProxy) forward(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); closeWrite(server); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); closeWrite(client); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}

// track records open connections so that Close can end them (watches stay open for minutes).
func (p *apiServerProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *apiServerProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}

// Close stops accepting, ends every forwarded connection and waits for the goroutines.
func (p *apiServerProxy) Close() {
	_ = p.listener.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
