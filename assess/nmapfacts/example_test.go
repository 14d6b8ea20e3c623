package nmapfacts_test

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/reckon-dev/reckon/assess"
	"github.com/reckon-dev/reckon/assess/nmapfacts"
)

func ExampleParse() {
	f, err := os.Open("testdata/ssh.xml")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	hosts, err := nmapfacts.Parse(f)
	if errors.Is(err, nmapfacts.ErrTruncated) {
		fmt.Println("partial:", err) // hosts still holds every complete host
	} else if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range hosts {
		for _, s := range h.SSH {
			fmt.Println(h.Target, s.Port, s.Software, slices.Contains(s.Kex, "diffie-hellman-group1-sha1"), s.HostKeys[0].Fingerprint)
		}
	}
	// Output:
	// 127.0.0.1 22022 OpenSSH_9.2p1 false SHA256:HDwSS5eErJdfj8diLrvg1zWrLanOgwu/UxKPODGudnY
	// 127.0.0.1 22023 OpenSSH_9.2p1 true SHA256:cVgrl9TeKZwXvHWVFE6rfzj9yI/9tNMD1fGyM67AdG0
}

func ExampleMerge() {
	parse := func(name string) []assess.Facts {
		f, err := os.Open(name)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		facts, err := nmapfacts.Parse(f)
		if err != nil {
			panic(err)
		}
		return facts
	}
	// Phase 1: -sV finds the services; phase 2: the SMB scripts on one.
	discovery := parse("testdata/discovery-sV.xml")
	scripts := parse("testdata/smb-24445.xml")
	f := discovery[0]
	nmapfacts.Merge(&f, scripts[0])
	for _, s := range f.SMB {
		fmt.Printf("%d smbv1=%v signing=%q\n", s.Port, s.SMBv1, s.Signing)
	}
	// Output:
	// 24445 smbv1=true signing="enabled"
	// 24446 smbv1=false signing=""
}
