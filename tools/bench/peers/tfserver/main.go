// tfserver: the smallest HTTP server that upgrades itself with
// cloudflare/tableflip, as its README shows. SIGHUP starts the new binary,
// which inherits the listener; once it calls Ready the old process shuts its
// http.Server down (closing idle keep-alive connections) and exits.
//
// Built offline in GOPATH mode against Debian's golang-github-cloudflare-
// tableflip-dev (see tools/bench/peers/run).
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	pidFile := flag.String("pid-file", "", "the serving generation writes its pid here")
	body := flag.String("body", "ok", "response body of every request")
	grace := flag.Duration("grace", 30*time.Second, "how long the old generation waits for in-flight requests")
	flag.Parse()

	upg, err := tableflip.New(tableflip.Options{PIDFile: *pidFile})
	if err != nil {
		log.Fatal(err)
	}
	defer upg.Stop()

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
		for range sig {
			if err := upg.Upgrade(); err != nil {
				log.Println("upgrade failed:", err)
			}
		}
	}()

	ln, err := upg.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	payload := []byte(*body)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload)
	})}
	go srv.Serve(ln)

	if err := upg.Ready(); err != nil {
		log.Fatal(err)
	}
	<-upg.Exit()

	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	srv.Shutdown(ctx)
}
