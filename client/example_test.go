package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
	"github.com/ferrydev/ferry/service"
)

// exampleServer runs a real ferryd node on loopback, serving a new
// directory that holds a 1 MiB file "big.bin" and a tree "conf" of three
// small files, and returns its control-plane address and a function that
// stops it and removes the directory.
func exampleServer() (addr string, stop func()) {
	root, err := os.MkdirTemp("", "ferry-example-")
	if err != nil {
		log.Fatal(err)
	}
	files := map[string]string{
		"big.bin":         strings.Repeat("x", 1<<20),
		"conf/app.yaml":   "replicas: 3\n",
		"conf/db.yaml":    "pool: 16\n",
		"conf/tls/ca.pem": "-----BEGIN CERTIFICATE-----\n",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	n, err := service.NewNode(service.Config{
		Root: root, Listen: "127.0.0.1:0", DataListen: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	return n.Addr().String(), func() {
		cancel()
		<-ran
		os.RemoveAll(root)
	}
}

// Pull one file into a local path. It lands whole or not at all: written
// aside, fsynced, then renamed into place.
func Example() {
	addr, stop := exampleServer()
	defer stop()

	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	dest := filepath.Join(os.TempDir(), "ferry-example-big.bin")
	defer os.Remove(dest)
	report, err := c.Download(context.Background(), "big.bin", dest, client.DownloadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes landed, %d reported sent\n", report.GetPath(), fi.Size(), report.GetSender().GetBytes())
	// Output: big.bin: 1048576 bytes landed, 1048576 reported sent
}

// Read what a transfer cost. The model figures are the textbook cost of
// the strategy that ran (labelled as a model); the system calls are
// counted at their call sites, and CPU time and context switches are
// measured on the copy loop's thread.
func ExampleClient_Download_report() {
	addr, stop := exampleServer()
	defer stop()

	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	report, err := c.Download(context.Background(), "big.bin", os.DevNull, client.DownloadOptions{
		Strategy: ferryv1.Strategy_STRATEGY_SENDFILE,
	})
	if err != nil {
		log.Fatal(err)
	}
	s := report.GetSender()
	fmt.Println("strategy:", s.GetStrategy())
	fmt.Println("bytes:", s.GetBytes())
	fmt.Println("modelled CPU copies per round:", s.GetModel().GetCpuCopies())
	fmt.Println("modelled user/kernel switches per round:", s.GetModel().GetModeSwitches())
	fmt.Println("counted sendfile calls > 0:", s.GetSyscalls()["sendfile"] > 0)
	fmt.Println("measured on the copy's thread:", s.GetThreadMeasured())
	// Output:
	// strategy: STRATEGY_SENDFILE
	// bytes: 1048576
	// modelled CPU copies per round: 0
	// modelled user/kernel switches per round: 2
	// counted sendfile calls > 0: true
	// measured on the copy's thread: true
}

// Pull a whole directory: files land whole, in a new directory, and the
// tree report counts what moved.
func ExampleClient_DownloadTree() {
	addr, stop := exampleServer()
	defer stop()

	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	parent, err := os.MkdirTemp("", "ferry-example-tree-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(parent)
	dest := filepath.Join(parent, "conf")
	report, err := c.DownloadTree(context.Background(), "conf", dest, client.TreeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d files, %d directories, %d bytes\n", report.GetFiles(), report.GetDirectories(), report.GetBytes())
	b, err := os.ReadFile(filepath.Join(dest, "tls", "ca.pem"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output:
	// 3 files, 2 directories, 49 bytes
	// -----BEGIN CERTIFICATE-----
}
