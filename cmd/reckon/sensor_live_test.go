//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/internal/lab"
)

// The live sensor on the lab's mirror port: DHCP clients with hostnames, a
// server with SSH and HTTP. The devices `reckon sensor --interface` prints
// as they appear are the lab's ground truth: the same MACs, each with the
// IPv4 address it holds and the hostname its DHCP client sent, and nothing
// else.
// lockedBuffer is a strings.Builder a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLiveSensorLab(t *testing.T) {
	lab.Require(t, "dnsmasq", "dhclient", "nginx", "ssh-keygen", "ssh-keyscan", "curl", "ping")
	l := lab.New(t, lab.Options{Hosts: []lab.HostSpec{
		{Name: "srv"},
		{Name: "c1", Hostname: "delta-01", DHCP: true},
		{Name: "c2", Hostname: "echo-02", DHCP: true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd := exec.Command("ip", "netns", "exec", l.SensorNetns, binary, "sensor", "--interface", l.SensorIface,
		"--format", "jsonl", "--sensor", "lab", "--workers", "2")
	cmd.Env = cleanEnv()
	stdout, _ := cmd.StdoutPipe()
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	type dev struct {
		ID        string   `json:"id"`
		MACs      []string `json:"macs"`
		IPs       []string `json:"ips"`
		Hostnames []string `json:"hostnames"`
	}
	var mu sync.Mutex
	latest := map[string]dev{} // the last line printed for each asset
	lines := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var d dev
			if json.Unmarshal(sc.Bytes(), &d) == nil {
				mu.Lock()
				latest[d.ID] = d
				mu.Unlock()
				select {
				case lines <- struct{}{}:
				default:
				}
			}
		}
	}()

	srv := l.Host("srv")
	clients := []*lab.Host{l.Host("c1"), l.Host("c2")}
	// The sensor is up once it prints the server, which ARPs for a neighbour.
	deadline := time.Now().Add(15 * time.Second)
	for {
		srv.Arping(ctx, srv.IP.Next(), 1)
		mu.Lock()
		n := len(latest)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sensor printed nothing: %s", stderr.String())
		}
	}
	srv.DHCPServer()
	srv.SSHServer()
	srv.HTTPServer("reckon lab")
	for _, h := range clients {
		if _, err := h.DHCPClient(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := clients[0].SSHKeyscan(ctx, srv.IP); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[1].HTTPGet(ctx, "http://"+srv.IP.String()+"/"); err != nil {
		t.Fatal(err)
	}

	truth := map[string]dev{srv.MAC.String(): {IPs: []string{srv.IP.String()}}}
	for _, h := range clients {
		truth[h.MAC.String()] = dev{IPs: []string{h.IP.String()}, Hostnames: []string{h.Hostname}}
	}
	// diff says how the printed devices differ from the truth, or "".
	diff := func() string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		seen := map[string]bool{}
		for _, d := range latest {
			if len(d.MACs) != 1 {
				out = append(out, "a device with MACs "+strings.Join(d.MACs, ","))
				continue
			}
			mac := d.MACs[0]
			want, ok := truth[mac]
			if !ok {
				out = append(out, "an unknown device "+mac)
				continue
			}
			seen[mac] = true
			var v4 []string
			for _, ip := range d.IPs {
				if !strings.Contains(ip, ":") {
					v4 = append(v4, ip)
				}
			}
			if !slices.Equal(v4, want.IPs) {
				out = append(out, mac+" has IPv4 "+strings.Join(v4, ",")+", want "+strings.Join(want.IPs, ","))
			}
			for _, n := range want.Hostnames {
				if !slices.Contains(d.Hostnames, n) {
					out = append(out, mac+" lacks hostname "+n)
				}
			}
		}
		for mac := range truth {
			if !seen[mac] {
				out = append(out, "missing "+mac)
			}
		}
		slices.Sort(out)
		return strings.Join(out, "; ")
	}
	deadline = time.Now().Add(15 * time.Second)
	for diff() != "" && time.Now().Before(deadline) {
		select {
		case <-lines:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if d := diff(); d != "" {
		t.Fatalf("the sensor's devices differ from the lab: %s\nstderr: %s", d, stderr.String())
	}
	// Interrupted, it stops cleanly with its counts.
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil || !strings.Contains(stderr.String(), "kernel drops") {
		t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
	}
}
