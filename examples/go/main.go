// An HTTP server for overseerd in Go, standard library only.
//
//	go build -o hello . && overseerd -l http=127.0.0.1:8080 --ready notify -- ./hello
//
// It serves on the socket overseerd passes as fd 3 (net.FileListener), or binds
// 127.0.0.1:8080 itself when run alone; sends READY=1 to NOTIFY_SOCKET once it
// accepts (sd_notify written out: one datagram); and on SIGTERM or SIGINT
// drains without failing a keep-alive client:
//
//  1. it closes its listener (close(), never shutdown(): the socket is shared
//     with the next generation, which accepts what is still queued);
//  2. for up to idleGrace it keeps serving the connections it has, and answers
//     every request with "Connection: close", after which net/http closes that
//     connection: the client reconnects, to the new generation;
//  3. then http.Server.Shutdown closes the connections still idle and waits
//     for the requests in flight (at most shutdownTimeout), and it exits.
//
// Why not Shutdown at once: it closes idle keep-alive connections at once, and
// a client that has just written its next request on one of them gets the
// connection closed without an answer (a read error). A client can always be
// about to send; answering with "Connection: close" first tells it not to.
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// How long idle keep-alive connections stay open after the stop signal, so
	// that a request already on its way gets an answer (with Connection: close).
	idleGrace = 1 * time.Second
	// Bound on the whole drain; keep it below overseerd's --stop-timeout (30s).
	shutdownTimeout = 20 * time.Second
)

// drain tracks the open connections, so that the grace ends early when the
// last one has closed, and says whether the server is draining.
type drain struct {
	draining atomic.Bool
	mu       sync.Mutex
	open     int
	empty    chan struct{} // closed once draining with no connection open
}

func newDrain() *drain { return &drain{empty: make(chan struct{})} }

// connState is the http.Server's ConnState hook.
func (d *drain) connState(_ net.Conn, state http.ConnState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch state {
	case http.StateNew:
		d.open++
	case http.StateClosed, http.StateHijacked:
		d.open--
		d.checkLocked()
	}
}

// start marks the drain; from now on every answer closes its connection.
func (d *drain) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining.Store(true)
	d.checkLocked()
}

func (d *drain) checkLocked() {
	if d.draining.Load() && d.open == 0 {
		select {
		case <-d.empty:
		default:
			close(d.empty)
		}
	}
}

// handler adds "Connection: close" to every answer given during the drain;
// net/http then closes the connection once the answer is written.
func (d *drain) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

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
	d := newDrain()
	server := &http.Server{Handler: d.handler(mux), ConnState: d.connState}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		notify("STOPPING=1")
		deadline, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		d.start()
		l.Close() // Serve returns; the connections it accepted go on
		select {
		case <-d.empty:
		case <-time.After(idleGrace):
		}
		// Closes the connections still idle, waits for the requests in flight.
		server.Shutdown(deadline)
		close(done)
	}()

	fmt.Printf("hello: generation %s serving as pid %d on %s\n", generation, os.Getpid(), l.Addr())
	if err := notify("READY=1"); err != nil {
		log.Printf("hello: cannot notify: %v", err)
	}
	if err := server.Serve(l); err != http.ErrServerClosed && !d.draining.Load() {
		log.Fatalf("hello: %v", err)
	}
	<-done
	fmt.Printf("hello: pid %d stopped\n", os.Getpid())
}
