//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Standard returns the options of the standard lab, the one NewStandard
// and Up build and `make lab-up` leaves running. Static hosts take .10 to
// .13 of a drawn 10.77.N.0/24, in this order; the clients lease from .100.
//
//	gw       .10  core-gw        dnsmasq DHCP server (udp 67)
//	web      .11  intranet-web   sshd (22), nginx HTTP (80), nginx HTTPS (443, self-signed)
//	infra    .12  infra01        snmpd (udp 161, community "public"), vsftpd (21, anonymous)
//	scanner  .13  scanner        nothing listening: run nmap and clients from here
//	ws1      DHCP fin-laptop-07  dhclient
//	ws2      DHCP hr-desk-12     dhclient
//
// The MACs are fixed, with real vendors' OUIs (Intel, VMware, Synology,
// QEMU, Apple, Dell) for fingerprinting to find.
func Standard() Options {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			panic(err)
		}
		return m
	}
	return Options{Hosts: []HostSpec{
		{Name: "gw", MAC: mac("00:1b:21:3a:10:01"), Hostname: "core-gw"},
		{Name: "web", MAC: mac("00:50:56:a1:22:10"), Hostname: "intranet-web"},
		{Name: "infra", MAC: mac("00:11:32:4f:aa:02"), Hostname: "infra01"},
		{Name: "scanner", MAC: mac("52:54:00:5c:a0:01"), Hostname: "scanner"},
		{Name: "ws1", MAC: mac("3c:22:fb:5d:41:07"), Hostname: "fin-laptop-07", DHCP: true},
		{Name: "ws2", MAC: mac("00:14:22:8e:91:3c"), Hostname: "hr-desk-12", DHCP: true},
	}}
}

// StandardSNMPCommunity is the standard lab's read-only SNMP community.
const StandardSNMPCommunity = "public"

// standardPrograms are what the standard lab's services run.
var standardPrograms = []string{"ip", "tc", "dnsmasq", "dhclient", "ssh-keygen", "nginx", "snmpd", "vsftpd"}

// NewStandard builds the standard lab (see Standard) for t with all its
// services started and both clients leased, and writes its ground truth to
// ground-truth.json in the lab's folder (TruthFile). It fails the test on
// any error, and skips it (or fails it under CI=true) where the lab cannot
// be built or a program is missing.
func NewStandard(t testing.TB) *Lab {
	t.Helper()
	Require(t, standardPrograms...)
	if _, err := os.Stat(sshdPath); err != nil {
		Require(t, "sshd")
	}
	l := New(t, Standard())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.startStandard(ctx); err != nil {
		t.Fatalf("lab: %v", err)
	}
	path := filepath.Join(l.dir, "ground-truth.json")
	if err := l.WriteGroundTruth(path); err != nil {
		t.Fatalf("lab: %v", err)
	}
	l.mu.Lock()
	l.truthFile = path
	l.mu.Unlock()
	return l
}

// startStandard starts the standard lab's services on a lab built from
// Standard(), and waits until both clients hold leases.
func (l *Lab) startStandard(ctx context.Context) error {
	for _, name := range []string{"gw", "web", "infra", "scanner", "ws1", "ws2"} {
		if l.byName[name] == nil {
			return fmt.Errorf("not the standard lab: no host %q", name)
		}
	}
	gw, web, infra := l.byName["gw"], l.byName["web"], l.byName["infra"]
	if _, err := gw.dhcpServer(); err != nil {
		return err
	}
	if _, err := web.sshServer(); err != nil {
		return err
	}
	if _, err := web.nginx("nginx", 80, "reckon lab: "+web.Hostname, nil); err != nil {
		return err
	}
	if _, err := web.httpsServer("reckon lab: " + web.Hostname + " over TLS"); err != nil {
		return err
	}
	if _, err := infra.snmpServer(StandardSNMPCommunity); err != nil {
		return err
	}
	if _, err := infra.ftpServer(true); err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, name := range []string{"ws1", "ws2"} {
		h := l.byName[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.DHCPClient(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DHCP returns the lab's DHCP server, the first a host's DHCPServer
// started; nil when there is none.
func (l *Lab) DHCP() *DHCPServer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dhcp
}
