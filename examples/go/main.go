// An HTTP server for overseerd in Go, standard library only.
//
//	go build -o hello . && overseerd -l http=127.0.0.1:8080 --ready notify -- ./hello
//
// It serves on the socket overseerd passes as fd 3 (net.FileListener), or binds
// 127.0.0.1:8080 itself when run alone; sends READY=1 to NOTIFY_SOCKET once it
// accepts (sd_notify written out: one datagram); and on SIGTERM or SIGINT stops
// accepting (http.Server.Shutdown closes the listener: close(), never
// shutdown()), finishes the requests in flight, and exits.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listener returns the socket named name that overseerd (or systemd) passed,
// or the first one, or binds fallback itself when none were passed.
func listener(name, fallback string) (net.Listener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return net.Listen("tcp", fallback)
	}
	count, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || count < 1 {
		return net.Listen("tcp", fallback)
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	index := 0
	for i, n := range names {
		if n == name && i < count {
			index = i
		}
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"} {
		os.Unsetenv(v)
	}
	f := os.NewFile(uintptr(3+index), name)
	// FileListener dups the fd (and sets O_NONBLOCK on the shared socket, which
	// every generation then sees: the others must tolerate EAGAIN on accept).
	l, err := net.FileListener(f)
	// Close the original, so that closing l really drops this process's hold.
	f.Close()
	return l, err
}

// notify sends one sd_notify(3) datagram to NOTIFY_SOCKET (a path, or @name
// for the abstract namespace).
func notify(message string) error {
	address := os.Getenv("NOTIFY_SOCKET")
	if address == "" {
		return nil
	}
	// Go turns a leading @ into the abstract namespace's NUL itself.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: address, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(message))
	return err
}

func main() {
	if token, ok := os.LookupEnv("OVERSEER_CHECK_TOKEN"); ok {
		fmt.Println(token) // overseerd's upgrade check: echo the token, exit 0
		return
	}
	generation := os.Getenv("OVERSEER_GENERATION")
	l, err := listener("http", "127.0.0.1:8080")
	if err != nil {
		log.Fatalf("hello: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Pid", strconv.Itoa(os.Getpid()))
		w.Header().Set("X-Generation", generation)
		fmt.Fprintf(w, "hello from pid %d generation %s\n", os.Getpid(), generation)
	})
	server := &http.Server{Handler: mux}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		notify("STOPPING=1")
		// Closes the listener, then waits for the requests in flight.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		server.Shutdown(shutdownCtx)
		close(done)
	}()

	fmt.Printf("hello: generation %s serving as pid %d on %s\n", generation, os.Getpid(), l.Addr())
	if err := notify("READY=1"); err != nil {
		log.Printf("hello: cannot notify: %v", err)
	}
	if err := server.Serve(l); err != http.ErrServerClosed {
		log.Fatalf("hello: %v", err)
	}
	<-done
	fmt.Printf("hello: pid %d stopped\n", os.Getpid())
}
