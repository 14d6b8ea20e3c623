package netbox

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reckon-dev/reckon/cmdb"
)

// List endpoints read.
const (
	pathDevices      = "/api/dcim/devices/"
	pathVMs          = "/api/virtualization/virtual-machines/"
	pathInterfaces   = "/api/dcim/interfaces/"
	pathVMInterfaces = "/api/virtualization/interfaces/"
	pathMACs         = "/api/dcim/mac-addresses/"
	pathIPs          = "/api/ipam/ip-addresses/"
)

// The records below hold only what a CI needs; encoding/json skips the
// rest of NetBox's (large) bodies.

type brief struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type choice struct {
	Value string `json:"value"`
}

// host is a device or a virtual machine.
type host struct {
	ID           int                        `json:"id"`
	URL          string                     `json:"url"`
	DisplayURL   string                     `json:"display_url"`
	Name         *string                    `json:"name"`
	Serial       string                     `json:"serial"`
	AssetTag     *string                    `json:"asset_tag"`
	Site         *brief                     `json:"site"`
	Tenant       *brief                     `json:"tenant"`
	Role         *brief                     `json:"role"`
	Status       choice                     `json:"status"`
	CustomFields map[string]json.RawMessage `json:"custom_fields"`
	LastUpdated  time.Time                  `json:"last_updated"`
}

func (h host) key() int { return h.ID }

type macBrief struct {
	MACAddress string `json:"mac_address"`
}

// iface is a dcim.interface or a virtualization.vminterface.
type iface struct {
	ID                int        `json:"id"`
	Device            *brief     `json:"device"`
	VirtualMachine    *brief     `json:"virtual_machine"`
	MACAddress        *string    `json:"mac_address"`
	PrimaryMACAddress *macBrief  `json:"primary_mac_address"`
	MACAddresses      []macBrief `json:"mac_addresses"`
	LastUpdated       time.Time  `json:"last_updated"`
}

func (f iface) key() int { return f.ID }

// assigned is the nested interface in assigned_object.
type assigned struct {
	Device         *brief `json:"device"`
	VirtualMachine *brief `json:"virtual_machine"`
}

type mac struct {
	ID                 int       `json:"id"`
	MACAddress         string    `json:"mac_address"`
	AssignedObjectType *string   `json:"assigned_object_type"`
	AssignedObjectID   *int      `json:"assigned_object_id"`
	AssignedObject     *assigned `json:"assigned_object"`
	LastUpdated        time.Time `json:"last_updated"`
}

func (m mac) key() int { return m.ID }

type ipaddr struct {
	ID                 int       `json:"id"`
	URL                string    `json:"url"`
	DisplayURL         string    `json:"display_url"`
	Address            string    `json:"address"`
	Status             choice    `json:"status"`
	DNSName            string    `json:"dns_name"`
	AssignedObjectType *string   `json:"assigned_object_type"`
	AssignedObjectID   *int      `json:"assigned_object_id"`
	AssignedObject     *assigned `json:"assigned_object"`
	LastUpdated        time.Time `json:"last_updated"`
}

func (a ipaddr) key() int { return a.ID }

// snapshot is what one read fetched.
type snapshot struct {
	devices, vms     []host
	ifaces, vmIfaces []iface
	macs             []mac
	ips              []ipaddr
	// An incremental read fetches the addresses of the hosts it reads and,
	// in loneIPs, the changed addresses assigned to no host.
	incremental bool
	loneIPs     []ipaddr
}

const (
	objInterface   = "dcim.interface"
	objVMInterface = "virtualization.vminterface"
)

// CIs reads NetBox and calls fn for each device, virtual machine and
// unassigned IP address; with since set, only for those changed since then
// (directly, or through one of their interfaces, MACs or addresses), each
// still complete. Deletions are not seen by an incremental read. An error
// means the read is incomplete.
func (c *Client) CIs(ctx context.Context, since time.Time, fn func(cmdb.CI) error) error {
	var s snapshot
	var err error
	if since.IsZero() {
		err = c.readAll(ctx, &s)
	} else {
		err = c.readSince(ctx, since, &s)
	}
	if err != nil {
		return err
	}
	for _, ci := range c.assemble(&s) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ci); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) readAll(ctx context.Context, s *snapshot) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { s.devices, err = list[host](gctx, c, pathDevices, nil); return })
	g.Go(func() (err error) { s.vms, err = list[host](gctx, c, pathVMs, nil); return })
	g.Go(func() (err error) { s.ifaces, err = list[iface](gctx, c, pathInterfaces, nil); return })
	g.Go(func() (err error) { s.vmIfaces, err = list[iface](gctx, c, pathVMInterfaces, nil); return })
	g.Go(func() (err error) { s.macs, err = list[mac](gctx, c, pathMACs, nil); return })
	g.Go(func() (err error) { s.ips, err = list[ipaddr](gctx, c, pathIPs, nil); return })
	return g.Wait()
}

// batch is how many ids go into one filtered request (repeated parameters
// are ORed by NetBox); it keeps URLs well under common 8 KiB limits.
const batch = 200

func (c *Client) readSince(ctx context.Context, since time.Time, s *snapshot) error {
	q := url.Values{"last_updated__gte": {since.UTC().Format(time.RFC3339Nano)}}
	var (
		devs, vms []host
		ifs, vifs []iface
		macs      []mac
		ips       []ipaddr
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { devs, err = list[host](gctx, c, pathDevices, q); return })
	g.Go(func() (err error) { vms, err = list[host](gctx, c, pathVMs, q); return })
	g.Go(func() (err error) { ifs, err = list[iface](gctx, c, pathInterfaces, q); return })
	g.Go(func() (err error) { vifs, err = list[iface](gctx, c, pathVMInterfaces, q); return })
	g.Go(func() (err error) { macs, err = list[mac](gctx, c, pathMACs, q); return })
	g.Go(func() (err error) { ips, err = list[ipaddr](gctx, c, pathIPs, q); return })
	if err := g.Wait(); err != nil {
		return err
	}

	// The devices and VMs touched, directly or through a changed
	// interface, MAC or address.
	touchedDev, touchedVM := map[int]bool{}, map[int]bool{}
	touch := func(t *string, a *assigned) bool {
		switch {
		case t == nil || a == nil:
		case *t == objInterface && a.Device != nil:
			touchedDev[a.Device.ID] = true
			return true
		case *t == objVMInterface && a.VirtualMachine != nil:
			touchedVM[a.VirtualMachine.ID] = true
			return true
		}
		return false
	}
	for _, d := range devs {
		touchedDev[d.ID] = true
	}
	for _, v := range vms {
		touchedVM[v.ID] = true
	}
	for _, f := range ifs {
		if f.Device != nil {
			touchedDev[f.Device.ID] = true
		}
	}
	for _, f := range vifs {
		if f.VirtualMachine != nil {
			touchedVM[f.VirtualMachine.ID] = true
		}
	}
	for _, m := range macs {
		touch(m.AssignedObjectType, m.AssignedObject)
	}
	for _, a := range ips {
		if !touch(a.AssignedObjectType, a.AssignedObject) {
			// A changed address on no device or VM is a CI of its own.
			s.loneIPs = append(s.loneIPs, a)
		}
	}
	devIDs := slices.Sorted(maps.Keys(touchedDev))
	vmIDs := slices.Sorted(maps.Keys(touchedVM))

	// Then those hosts whole: themselves and all their interfaces, MACs
	// and addresses, by id filters in batches.
	var mu sync.Mutex
	g, gctx = errgroup.WithContext(ctx)
	fetch := func(ids []int, param string, read func(q url.Values) error) {
		for chunk := range slices.Chunk(ids, batch) {
			q := url.Values{}
			for _, id := range chunk {
				q.Add(param, strconv.Itoa(id))
			}
			g.Go(func() error { return read(q) })
		}
	}
	fetch(devIDs, "id", collect(gctx, c, pathDevices, &mu, &s.devices))
	fetch(devIDs, "device_id", collect(gctx, c, pathInterfaces, &mu, &s.ifaces))
	fetch(devIDs, "device_id", collect(gctx, c, pathMACs, &mu, &s.macs))
	fetch(devIDs, "device_id", collect(gctx, c, pathIPs, &mu, &s.ips))
	fetch(vmIDs, "id", collect(gctx, c, pathVMs, &mu, &s.vms))
	fetch(vmIDs, "virtual_machine_id", collect(gctx, c, pathVMInterfaces, &mu, &s.vmIfaces))
	fetch(vmIDs, "virtual_machine_id", collect(gctx, c, pathMACs, &mu, &s.macs))
	fetch(vmIDs, "virtual_machine_id", collect(gctx, c, pathIPs, &mu, &s.ips))
	if err := g.Wait(); err != nil {
		return err
	}
	s.incremental = true
	return nil
}

// collect returns a reader of path that appends what it reads to dst.
func collect[T identified](ctx context.Context, c *Client, path string, mu *sync.Mutex, dst *[]T) func(url.Values) error {
	return func(q url.Values) error {
		r, err := list[T](ctx, c, path, q)
		if err != nil {
			return err
		}
		mu.Lock()
		*dst = append(*dst, r...)
		mu.Unlock()
		return nil
	}
}

// ciBuilder gathers one device's or VM's CI.
type ciBuilder struct {
	ci   cmdb.CI
	macs map[string]bool
	ips  map[netip.Addr]int // index into ci.IPs
}

func (b *ciBuilder) touch(t time.Time) {
	if t.After(b.ci.LastUpdated) {
		b.ci.LastUpdated = t
	}
}

func (b *ciBuilder) addMAC(s string) {
	if m := canonicalMAC(s); m != "" && !b.macs[m] {
		b.macs[m] = true
		b.ci.MACs = append(b.ci.MACs, m)
	}
}

func (b *ciBuilder) addIP(a netip.Addr, static bool) {
	if i, ok := b.ips[a]; ok {
		b.ci.Static[i] = b.ci.Static[i] || static
		return
	}
	b.ips[a] = len(b.ci.IPs)
	b.ci.IPs = append(b.ci.IPs, a)
	b.ci.Static = append(b.ci.Static, static)
}

// canonicalMAC is the lower-case colon form, or "" for a value that is not
// a 48-bit MAC.
func canonicalMAC(s string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// hostAddr parses "10.0.0.5/24" (or a bare address) to the address alone.
func hostAddr(s string) (netip.Addr, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

func isStatic(status string) bool { return status != "dhcp" && status != "slaac" }

func (c *Client) hostCI(h *host, id, class string) *ciBuilder {
	b := &ciBuilder{macs: map[string]bool{}, ips: map[netip.Addr]int{}}
	ci := &b.ci
	ci.ID, ci.Class = id, class
	if h.Name != nil {
		ci.Name = strings.ToLower(*h.Name)
	}
	ci.URL = cmp.Or(h.DisplayURL, h.URL)
	ci.ReckonID = cfString(h.CustomFields, c.o.ReckonIDField)
	ci.Owner = cfString(h.CustomFields, "owner")
	ci.Serial = h.Serial
	if h.AssetTag != nil {
		ci.AssetTag = *h.AssetTag
	}
	if h.Site != nil {
		ci.Site = h.Site.Name
	}
	if h.Tenant != nil {
		ci.BusinessUnit = h.Tenant.Name
	}
	if h.Role != nil {
		ci.Role = h.Role.Name
	}
	ci.Status = h.Status.Value
	ci.LastUpdated = h.LastUpdated
	return b
}

// cfString is custom field k when it is a string.
func cfString(m map[string]json.RawMessage, k string) string {
	raw, ok := m[k]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// assemble builds the CIs: devices, then VMs, then unassigned addresses,
// each in id order.
func (c *Client) assemble(s *snapshot) []cmdb.CI {
	devs := make(map[int]*ciBuilder, len(s.devices))
	vms := make(map[int]*ciBuilder, len(s.vms))
	slices.SortFunc(s.devices, func(a, b host) int { return a.ID - b.ID })
	slices.SortFunc(s.vms, func(a, b host) int { return a.ID - b.ID })
	for i := range s.devices {
		d := &s.devices[i]
		devs[d.ID] = c.hostCI(d, "dcim.device:"+strconv.Itoa(d.ID), "device")
	}
	for i := range s.vms {
		v := &s.vms[i]
		vms[v.ID] = c.hostCI(v, "virtualization.virtualmachine:"+strconv.Itoa(v.ID), "virtual_machine")
	}
	ifOwner := make(map[int]*ciBuilder, len(s.ifaces))
	vifOwner := make(map[int]*ciBuilder, len(s.vmIfaces))
	sortIDs(s.ifaces)
	sortIDs(s.vmIfaces)
	sortIDs(s.macs)
	sortIDs(s.ips)
	for _, f := range s.ifaces {
		if f.Device == nil || devs[f.Device.ID] == nil {
			continue
		}
		b := devs[f.Device.ID]
		ifOwner[f.ID] = b
		addIfaceMACs(b, &f)
	}
	for _, f := range s.vmIfaces {
		if f.VirtualMachine == nil || vms[f.VirtualMachine.ID] == nil {
			continue
		}
		b := vms[f.VirtualMachine.ID]
		vifOwner[f.ID] = b
		addIfaceMACs(b, &f)
	}
	owner := func(t *string, id *int, a *assigned) *ciBuilder {
		if t == nil || id == nil {
			return nil
		}
		switch *t {
		case objInterface:
			if b := ifOwner[*id]; b != nil {
				return b
			}
			if a != nil && a.Device != nil {
				return devs[a.Device.ID]
			}
		case objVMInterface:
			if b := vifOwner[*id]; b != nil {
				return b
			}
			if a != nil && a.VirtualMachine != nil {
				return vms[a.VirtualMachine.ID]
			}
		}
		return nil
	}
	for _, m := range s.macs {
		if b := owner(m.AssignedObjectType, m.AssignedObjectID, m.AssignedObject); b != nil {
			b.addMAC(m.MACAddress)
			b.touch(m.LastUpdated)
		}
	}
	var lone []cmdb.CI
	loneCI := func(a *ipaddr) {
		addr, ok := hostAddr(a.Address)
		if !ok {
			c.log.Debug("netbox: skipping an unparsable address", "id", a.ID, "address", a.Address)
			return
		}
		lone = append(lone, cmdb.CI{ID: "ipam.ipaddress:" + strconv.Itoa(a.ID), Class: "ip_address",
			Name: strings.ToLower(a.DNSName), URL: cmp.Or(a.DisplayURL, a.URL),
			IPs: []netip.Addr{addr}, Static: []bool{isStatic(a.Status.Value)}, Status: a.Status.Value,
			LastUpdated: a.LastUpdated})
	}
	for i := range s.ips {
		a := &s.ips[i]
		b := owner(a.AssignedObjectType, a.AssignedObjectID, a.AssignedObject)
		if b == nil {
			if !s.incremental && !assignedToHost(a) {
				loneCI(a)
			}
			continue
		}
		addr, ok := hostAddr(a.Address)
		if !ok {
			c.log.Debug("netbox: skipping an unparsable address", "id", a.ID, "address", a.Address)
			continue
		}
		b.addIP(addr, isStatic(a.Status.Value))
		b.touch(a.LastUpdated)
	}
	for i := range s.loneIPs {
		if !assignedToHost(&s.loneIPs[i]) {
			loneCI(&s.loneIPs[i])
		}
	}
	out := make([]cmdb.CI, 0, len(devs)+len(vms)+len(lone))
	for _, d := range s.devices {
		out = append(out, devs[d.ID].done())
	}
	for _, v := range s.vms {
		out = append(out, vms[v.ID].done())
	}
	slices.SortFunc(lone, func(a, b cmdb.CI) int { return strings.Compare(a.ID, b.ID) })
	return append(out, lone...)
}

// assignedToHost says the address is on a device or VM interface (one the
// read did not return, in an incremental read of other hosts).
func assignedToHost(a *ipaddr) bool {
	return a.AssignedObjectType != nil && a.AssignedObjectID != nil &&
		(*a.AssignedObjectType == objInterface || *a.AssignedObjectType == objVMInterface)
}

func addIfaceMACs(b *ciBuilder, f *iface) {
	if f.PrimaryMACAddress != nil {
		b.addMAC(f.PrimaryMACAddress.MACAddress)
	}
	if f.MACAddress != nil {
		b.addMAC(*f.MACAddress)
	}
	for _, m := range f.MACAddresses {
		b.addMAC(m.MACAddress)
	}
	b.touch(f.LastUpdated)
}

// done sorts MACs and addresses so a CI reads the same every time.
func (b *ciBuilder) done() cmdb.CI {
	ci := b.ci
	slices.Sort(ci.MACs)
	if len(ci.IPs) > 1 {
		idx := make([]int, len(ci.IPs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(x, y int) int { return ci.IPs[x].Compare(ci.IPs[y]) })
		ips, st := make([]netip.Addr, len(idx)), make([]bool, len(idx))
		for i, j := range idx {
			ips[i], st[i] = ci.IPs[j], ci.Static[j]
		}
		ci.IPs, ci.Static = ips, st
	}
	return ci
}

func sortIDs[T identified](s []T) {
	slices.SortFunc(s, func(a, b T) int { return a.key() - b.key() })
}
