// Command pause is the pod sandbox's process: it holds the pod's namespaces open and does nothing else.
//
// Kubernetes' own pause is a C program built with the release tooling; a registry is not reachable
// here and this one needs only Go. As PID 1 of the sandbox it reaps any zombie re-parented to it and
// exits 0 on SIGINT or SIGTERM, which is all the runtime expects of it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
