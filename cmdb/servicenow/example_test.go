package servicenow_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reckon-dev/reckon/cmdb"
	"github.com/reckon-dev/reckon/cmdb/servicenow"
	"github.com/reckon-dev/reckon/cmdb/servicenow/servicenowtest"
)

// Reading CIs and pushing an asset, against the emulator.
func Example() {
	sn := servicenowtest.New(servicenowtest.Seed())
	defer sn.Close()

	c, err := servicenow.New(servicenow.Options{URL: sn.URL, Token: sn.Token, ReckonIDField: "u_reckon_asset_id"})
	if err != nil {
		panic(err)
	}
	err = c.CIs(context.Background(), time.Time{}, func(ci cmdb.CI) error {
		fmt.Println(ci.Name, ci.Class, ci.Status, ci.MACs)
		return nil
	})
	if err != nil {
		panic(err)
	}
	changes, err := c.Push(context.Background(), []cmdb.Asset{{ID: "a-42", Name: "laptop-42", Serial: "SN42"}},
		cmdb.PushOptions{DryRun: true, Message: "reckon nightly"})
	if err != nil {
		panic(err)
	}
	for _, ch := range changes {
		fmt.Println(ch.Action, ch.Object, ch.Fields["name"], ch.Message)
	}
	// Output:
	// ws-0001 cmdb_ci_computer active [00:50:56:aa:bb:01 a4:5e:60:c1:d2:e3]
	// db-01.acme.example cmdb_ci_linux_server retired [52:54:00:12:34:56 52:54:00:12:34:57]
	// sw-core-1 cmdb_ci_ip_switch active [00:1b:54:00:00:01]
	// ups-7 cmdb_ci_hardware inventory []
	// printer-3f cmdb_ci_ip_device stolen [00:1b:a9:44:10:3f]
	// create cmdb_ci_computer laptop-42 reckon nightly
}
