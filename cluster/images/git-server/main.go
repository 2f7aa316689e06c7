// git-server serves the Git repositories under a root folder over Git's smart HTTP protocol (clone,
// fetch and push), by running `git http-backend` as a CGI program for each request. The e2e suite runs
// it in the cluster so that Argo CD reads a repository the test pushes to, as it would read GitHub.
//
//	git-server -root /srv/git -listen :8080 -init platform.git
//
// -init creates the named bare repositories (default branch main) and allows pushing to them over HTTP
// without authentication: only for a test cluster, where the Service is reached through port-forwards
// and from Argo CD's pods.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	root := flag.String("root", "/srv/git", "folder holding the bare repositories")
	listen := flag.String("listen", ":8080", "address to serve on")
	backend := flag.String("backend", "/usr/lib/git-core/git-http-backend", "git's CGI program")
	initRepos := flag.String("init", "", "comma-separated bare repositories to create under -root")
	flag.Parse()

	for _, name := range strings.Split(*initRepos, ",") {
		if name == "" {
			continue
		}
		dir := filepath.Join(*root, name)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		for _, args := range [][]string{
			{"init", "--quiet", "--bare", "--initial-branch=main", dir},
			{"-C", dir, "config", "http.receivepack", "true"},
		} {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				log.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		log.Printf("created %s", dir)
	}

	git := &cgi.Handler{
		Path: *backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + *root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", logged(sized(git)))
	server := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("serving %s on %s", *root, *listen)
	log.Fatal(server.ListenAndServe())
}

// maxBody bounds a push: the e2e suite pushes this repository (a few MB) and small commits.
const maxBody = 256 << 20

// sized reads a chunked request body (git sends a push larger than its http.postBuffer that way)
// into memory, because CGI hands the program a CONTENT_LENGTH and git http-backend refuses a POST
// without one.
func sized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength < 0 && r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil || len(body) > maxBody {
				http.Error(w, fmt.Sprintf("request body unreadable or over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			r.TransferEncoding = nil
		}
		next.ServeHTTP(w, r)
	})
}

// logged writes one line per request, so a failing test shows what Argo CD and the pushes asked for.
func logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		log.Printf("%s %s?%s %s", r.Method, r.URL.Path, r.URL.RawQuery, time.Since(start).Round(time.Millisecond))
	})
}
