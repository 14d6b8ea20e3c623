// Package servicenowtest is an in-memory ServiceNow instance for tests: the
// Table API subset the servicenow client reads (encoded queries with ^,
// =, !=, <, <=, >, >=, IN, dot-walks and ORDERBY; sysparm_fields,
// sysparm_display_value, sysparm_exclude_reference_link, limit/offset with
// Link and X-Total-Count headers) and the IRE endpoints, which validate
// every payload, identify items much as the Hardware Rule does, answer in
// the shape of the documented response and record their writes. Faults
// (status, Retry-After, delay, truncated body, revoked token) are injected
// per path.
package servicenowtest

import "time"

// CI is a seeded configuration item. Reference fields (Location, Company,
// Department, OwnedBy, AssignedTo) hold sys_ids of Dataset.Refs.
type CI struct {
	SysID, Class, Name, Serial, AssetTag, MAC, IP      string
	Location, Company, Department, OwnedBy, AssignedTo string
	InstallStatus                                      string // choice value: "1" installed, "7" retired ...
	Updated                                            time.Time
	// Extra holds other fields (u_role, u_reckon_asset_id ...).
	Extra map[string]string
}

// Adapter is a cmdb_ci_network_adapter row; CI is its CI's sys_id.
type Adapter struct {
	SysID, CI, Name, MAC, IP string
	Updated                  time.Time
}

// Dataset is what a Server starts with.
type Dataset struct {
	CIs      []CI
	Adapters []Adapter
	// Refs are the display values of referenced records (locations,
	// departments, companies, users) by sys_id.
	Refs map[string]string
}

// Seed sys_ids, for assertions.
const (
	WS1    = "0a1b2c3d4e5f60718293a4b5c6d7e801" // cmdb_ci_computer, installed
	DB1    = "1a1b2c3d4e5f60718293a4b5c6d7e802" // cmdb_ci_linux_server (a computer, so also hardware), retired
	SW1    = "2a1b2c3d4e5f60718293a4b5c6d7e803" // cmdb_ci_ip_switch (hardware)
	UPS1   = "3a1b2c3d4e5f60718293a4b5c6d7e804" // cmdb_ci_hardware, in stock, no adapters
	PRN1   = "4a1b2c3d4e5f60718293a4b5c6d7e805" // cmdb_ci_ip_device
	APP1   = "5a1b2c3d4e5f60718293a4b5c6d7e806" // cmdb_ci_appl: not a table the client reads
	locAMS = "9a000000000000000000000000000001"
	locFRA = "9a000000000000000000000000000002"
	depEng = "9b000000000000000000000000000001"
	coAcme = "9c000000000000000000000000000001"
	usrAli = "9d000000000000000000000000000001"
	usrBob = "9d000000000000000000000000000002"
)

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// Seed is the default dataset:
//
//   - WS1 "WS-0001" computer in AMS1, Engineering, owned by Alice,
//     installed, updated 2024-03-01; adapters eth0 00:50:56:aa:bb:01 /
//     10.0.0.11 and wlan0 A4-5E-60-C1-D2-E3 (dash, upper case) without IP;
//     its own mac_address/ip_address repeat eth0's.
//   - DB1 "db-01.acme.example." linux server in FRA1, company Acme only,
//     assigned to Bob only, retired, updated 2024-05-10; adapters ens3
//     52:54:00:12:34:56 / 10.0.1.20 and one whose IP is "n/a".
//   - SW1 "SW-CORE-1" IP switch, installed, updated 2024-05-12; adapter
//     mgmt0 00:1b:54:00:00:01 / 10.0.0.2, plus u_role "core switch".
//   - UPS1 "UPS-7" hardware, in stock (6), updated 2024-01-01.
//   - PRN1 "printer-3f" IP device, IP 10.0.3.15 on the CI, status 8
//     (stolen), updated 2024-04-01; adapter 00:1b:a9:44:10:3f.
//   - APP1 an application with an adapter: never read by the client.
func Seed() Dataset {
	return Dataset{
		Refs: map[string]string{locAMS: "AMS1", locFRA: "FRA1", depEng: "Engineering", coAcme: "Acme", usrAli: "Alice Adams", usrBob: "Bob Brown"},
		CIs: []CI{
			{SysID: WS1, Class: "cmdb_ci_computer", Name: "WS-0001", Serial: "SN-WS-0001", AssetTag: "P000101",
				MAC: "00:50:56:AA:BB:01", IP: "10.0.0.11", Location: locAMS, Department: depEng, Company: coAcme,
				OwnedBy: usrAli, AssignedTo: usrBob, InstallStatus: "1", Updated: ts("2024-03-01 10:00:00")},
			{SysID: DB1, Class: "cmdb_ci_linux_server", Name: "db-01.acme.example.", Serial: "VMware-42 1a 2b",
				Location: locFRA, Company: coAcme, AssignedTo: usrBob, InstallStatus: "7", Updated: ts("2024-05-10 08:30:00")},
			{SysID: SW1, Class: "cmdb_ci_ip_switch", Name: "SW-CORE-1", Serial: "FOC1234X0AB", InstallStatus: "1",
				Location: locAMS, Updated: ts("2024-05-12 23:59:59"), Extra: map[string]string{"u_role": "core switch", "u_reckon_asset_id": "a-sw1"}},
			{SysID: UPS1, Class: "cmdb_ci_hardware", Name: "UPS-7", AssetTag: "P000777", InstallStatus: "6", Updated: ts("2024-01-01 00:00:00")},
			{SysID: PRN1, Class: "cmdb_ci_ip_device", Name: "printer-3f", IP: "10.0.3.15", InstallStatus: "8", Updated: ts("2024-04-01 12:00:00")},
			{SysID: APP1, Class: "cmdb_ci_appl", Name: "payroll", InstallStatus: "1", Updated: ts("2024-06-01 00:00:00")},
		},
		Adapters: []Adapter{
			{SysID: "aa000000000000000000000000000001", CI: WS1, Name: "eth0", MAC: "00:50:56:aa:bb:01", IP: "10.0.0.11", Updated: ts("2024-03-01 10:00:00")},
			{SysID: "aa000000000000000000000000000002", CI: WS1, Name: "wlan0", MAC: "A4-5E-60-C1-D2-E3", Updated: ts("2024-03-01 10:00:00")},
			{SysID: "aa000000000000000000000000000003", CI: DB1, Name: "ens3", MAC: "52:54:00:12:34:56", IP: "10.0.1.20", Updated: ts("2024-05-10 08:30:00")},
			{SysID: "aa000000000000000000000000000004", CI: DB1, Name: "ens4", MAC: "52:54:00:12:34:57", IP: "n/a", Updated: ts("2024-05-10 08:30:00")},
			{SysID: "aa000000000000000000000000000005", CI: SW1, Name: "mgmt0", MAC: "00:1b:54:00:00:01", IP: "10.0.0.2", Updated: ts("2024-01-01 00:00:00")},
			{SysID: "aa000000000000000000000000000006", CI: PRN1, Name: "nic", MAC: "00:1b:a9:44:10:3f", Updated: ts("2024-04-01 12:00:00")},
			{SysID: "aa000000000000000000000000000007", CI: APP1, Name: "eth0", MAC: "02:00:00:00:00:99", IP: "10.9.9.9", Updated: ts("2024-06-01 00:00:00")},
		},
	}
}

// parents is the class hierarchy the emulator knows: a table holds the
// records of its class and of every class below it.
var parents = map[string]string{
	"cmdb_ci_hardware":        "cmdb_ci",
	"cmdb_ci_computer":        "cmdb_ci_hardware",
	"cmdb_ci_server":          "cmdb_ci_computer",
	"cmdb_ci_linux_server":    "cmdb_ci_server",
	"cmdb_ci_win_server":      "cmdb_ci_server",
	"cmdb_ci_netgear":         "cmdb_ci_hardware",
	"cmdb_ci_ip_switch":       "cmdb_ci_netgear",
	"cmdb_ci_ip_router":       "cmdb_ci_netgear",
	"cmdb_ci_ip_device":       "cmdb_ci",
	"cmdb_ci_appl":            "cmdb_ci",
	"cmdb_ci_network_adapter": "cmdb_ci",
	"cmdb_ci":                 "",
}

// labels are the classes' display names (sys_class_name display value).
var labels = map[string]string{
	"cmdb_ci": "Configuration Item", "cmdb_ci_hardware": "Hardware", "cmdb_ci_computer": "Computer",
	"cmdb_ci_server": "Server", "cmdb_ci_linux_server": "Linux Server", "cmdb_ci_win_server": "Windows Server",
	"cmdb_ci_netgear": "Network Gear", "cmdb_ci_ip_switch": "IP Switch", "cmdb_ci_ip_router": "IP Router",
	"cmdb_ci_ip_device": "IP Device", "cmdb_ci_appl": "Application", "cmdb_ci_network_adapter": "Network Adapter",
}

var installLabels = map[string]string{"1": "Installed", "2": "On Order", "3": "In Maintenance", "4": "Pending Install",
	"5": "Pending Repair", "6": "In Stock", "7": "Retired", "8": "Stolen", "100": "Absent"}

// isA reports whether class is table or below it.
func isA(class, table string) bool {
	for c := class; c != ""; c = parents[c] {
		if c == table {
			return true
		}
	}
	return false
}
