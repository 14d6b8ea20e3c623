package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A one-off sweep of loopback with the real nmap finds a port a test
// listener holds open.
func TestSweepLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	r := reckon(t, cleanEnv(), "sweep", "--targets", "127.0.0.1", "--ports", strconv.Itoa(port), "--format", "jsonl", "--service-detection=false")
	if r.code != 0 {
		t.Fatalf("sweep: %d\n%s", r.code, r.stderr)
	}
	var dev struct {
		IPs      []string `json:"ips"`
		Services []struct {
			Port  int    `json:"port"`
			Proto string `json:"proto"`
		} `json:"services"`
		Sources []string `json:"sources"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &dev); err != nil {
		t.Fatalf("%v: %q", err, r.stdout)
	}
	if len(dev.IPs) != 1 || dev.IPs[0] != "127.0.0.1" || len(dev.Services) != 1 || dev.Services[0].Port != port || dev.Sources[0] != "active:nmap" {
		t.Fatalf("device %+v", dev)
	}
	// On a terminal (script(1) gives it one) it draws a progress bar; in a
	// pipe, as above, it does not.
	if strings.Contains(r.stderr, "[#") {
		t.Fatalf("a progress bar in a pipe: %q", r.stderr)
	}
	if _, err := exec.LookPath("script"); err == nil {
		out, err := exec.Command("script", "-qec", fmt.Sprintf("%s sweep --targets 127.0.0.1 --ports %d --service-detection=false", binary, port), "/dev/null").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "100.0%") || !strings.Contains(string(out), "1 up") {
			t.Fatalf("on a terminal: %v\n%q", err, out)
		}
	}
}

// writeFakeNmap writes a stand-in for nmap that records that it ran and
// plays back a recorded XML, whole or cut off by its own death.
func writeFakeNmap(t *testing.T, dir, mode string) (path, marker string) {
	t.Helper()
	xml, _ := filepath.Abs(filepath.Join("..", "..", "discovery", "active", "testdata", "nmap", "discovery-sV.xml"))
	marker = filepath.Join(dir, "ran")
	body := fmt.Sprintf(`#!/bin/sh
echo "$@" >> %s
out=""; prev=""
for a in "$@"; do [ "$prev" = "-oX" ] && out="$a"; prev="$a"; done
`, marker)
	switch mode {
	case "whole":
		body += fmt.Sprintf("cp %s \"$out\"\n", xml)
	case "killed":
		// Two hosts whole, the third cut off by a death by SIGKILL.
		multi := filepath.Join(filepath.Dir(xml), "loopback-multi.xml")
		body += fmt.Sprintf("head -c 6200 %s > \"$out\"\nkill -9 $$\n", multi)
	}
	path = filepath.Join(dir, "nmap")
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, marker
}

// Hostile and out-of-scope targets are refused before nmap runs: nothing a
// user types becomes an nmap option, and the refusal names the target and
// the rule.
func TestSweepRefusals(t *testing.T) {
	dir := t.TempDir()
	nmap, marker := writeFakeNmap(t, dir, "whole")
	cfg := filepath.Join(dir, "scope.yaml")
	os.WriteFile(cfg, []byte("scopes:\n  - name: lab\n    allow: [127.0.0.0/8]\n    exclude: [127.0.0.9/32]\nactive:\n  nmap: "+nmap+"\n"), 0o600)
	for target, want := range map[string]string{
		"-oN" + dir + "/pwned":          "option",
		"--script=broadcast":            "option",
		"127.0.0.1 -oN " + dir + "/pw2": "target",
		"10.9.9.9":                      `outside scope "lab"`,
		"127.0.0.9":                     `excluded by scope "lab"`,
		"$(reboot)":                     "target",
		"127.0.0.0/4":                   `outside scope "lab"`,
	} {
		r := reckon(t, cleanEnv(), "sweep", "--config", cfg, "--targets", target, "--ports", "80")
		if r.code == 0 {
			t.Errorf("%q was not refused", target)
			continue
		}
		wantOneLineError(t, r, want)
	}
	if _, err := os.Stat(marker); err == nil {
		b, _ := os.ReadFile(marker)
		t.Fatalf("nmap ran for a refused target: %s", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "pw*")); len(m) > 0 {
		t.Fatalf("a target became an nmap option: %v", m)
	}
	// No scope in the configuration: nothing may be swept.
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, []byte("active:\n  nmap: "+nmap+"\n"), 0o600)
	wantOneLineError(t, reckon(t, cleanEnv(), "sweep", "--config", empty, "--targets", "127.0.0.1"), "no scopes")
	// No nmap: one error naming the package.
	wantOneLineError(t, reckon(t, append(cleanEnv(), "PATH=/nonexistent"), "sweep", "--targets", "127.0.0.1"), "apt-get install nmap")
}

// nmap killed mid-run: what it wrote is kept and printed, and the sweep
// says what failed.
func TestSweepNmapKilled(t *testing.T) {
	dir := t.TempDir()
	nmap, _ := writeFakeNmap(t, dir, "killed")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("scopes:\n  - name: lo\n    allow: [127.0.0.0/8]\nactive:\n  nmap: "+nmap+"\n"), 0o600)
	r := reckon(t, cleanEnv(), "sweep", "--config", cfg, "--targets", "127.0.0.1", "--format", "jsonl")
	if r.code != 1 || !strings.Contains(r.stderr, "signal") || !strings.Contains(r.stderr, "found") {
		t.Fatalf("killed nmap: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "127.0.0.2") || !strings.Contains(r.stdout, "SimpleHTTPServer") || strings.Contains(r.stdout, "127.0.0.3") {
		t.Fatalf("what nmap wrote before it died was lost: %q", r.stdout)
	}
}
