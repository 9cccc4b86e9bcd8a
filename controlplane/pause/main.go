// Command pause is the pod sandbox's process in the node's pause image: it holds the pod's
// namespaces and does nothing until it is told to stop. It is built statically, so its image is
// this binary alone.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As process 1 of its namespace it has no default signal handlers: without these it could
	// only be killed.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
