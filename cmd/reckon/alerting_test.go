package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/reckon-dev/reckon/alert"
	assessrunner "github.com/reckon-dev/reckon/assess/runner"
	"github.com/reckon-dev/reckon/cmd/reckon/config"
	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/passive"
	"github.com/reckon-dev/reckon/inventory/queue"
	"github.com/reckon-dev/reckon/inventory/store"
	"github.com/reckon-dev/reckon/inventory/store/storetest"
)

// reckon's own failures become health alerts, and clear when they stop.
func TestHealthAlerts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		cfg := config.Default()
		cfg.CMDB.Kind = "file"
		cfg.Assess.BacklogLimit = 1
		db := st.DB
		now := time.Now().UTC()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`INSERT INTO reconciliations (id, state, trigger, cmdb, errors, created_at) VALUES (?, 'failed', 'schedule', 'netbox', '["netbox: 503"]', ?)`, "r1", now)
		exec(`INSERT INTO sweeps (id, name, origin, definition, created_at, updated_at) VALUES ('s1', 'dmz', 'config', '{}', ?, ?)`, now, now)
		exec(`INSERT INTO sweep_runs (id, sweep_id, sweep_name, state, trigger, definition, failure, created_at) VALUES ('w1', 's1', 'dmz', 'succeeded', 'schedule', '{}', '', ?)`, now.Add(-time.Hour))
		exec(`INSERT INTO sweep_runs (id, sweep_id, sweep_name, state, trigger, definition, failure, created_at) VALUES ('w2', 's1', 'dmz', 'failed', 'schedule', '{}', 'nmap: no such file', ?)`, now)
		svc := assessrunner.New(assessrunner.Options{Store: st})
		q, err := queue.New(queue.Options{Store: st, Queues: map[string]int{assessrunner.Queue: 1}, Register: svc.RegisterJobs})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetClient(q.Client) // not started: the jobs wait
		if n, err := svc.Enqueue(ctx, []string{"a1", "a2"}, assessrunner.TriggerPeriodic, assessrunner.PriorityPeriodic); err != nil || n != 2 {
			t.Fatalf("enqueue: %d %v", n, err)
		}
		// Remote sensors: one quiet for 20 minutes, one fresh, one retired.
		if err := alert.NoteSensors(ctx, st, []string{"span-east"}, "token:sensor-east", now.Add(-20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := alert.NoteSensors(ctx, st, []string{"span-west", "span-west"}, "token:sensor-west", now); err != nil {
			t.Fatal(err)
		}
		if err := alert.NoteSensors(ctx, st, []string{"span-old"}, "token:old", now.Add(-8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		sigs, err := healthSignals(ctx, cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, s := range sigs {
			keys = append(keys, s.Key)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"assessment backlog", "cmdb", "sensor span-east", "sweep dmz"}) {
			t.Fatalf("health signals %v", keys)
		}
		alerts := alert.New(alert.Options{Store: st})
		if ch, err := alerts.Sync(ctx, alert.KindHealth, sigs); err != nil || len(ch) != 4 {
			t.Fatalf("sync: %v %+v", err, ch)
		}
		// The CMDB answers again, the sweep works and the sensor ships
		// again: only the backlog fires.
		if err := alert.NoteSensors(ctx, st, []string{"span-east"}, "token:sensor-east", now); err != nil {
			t.Fatal(err)
		}
		exec(`INSERT INTO reconciliations (id, state, trigger, cmdb, created_at) VALUES ('r2', 'succeeded', 'schedule', 'netbox', ?)`, now.Add(time.Minute))
		exec(`INSERT INTO sweep_runs (id, sweep_id, sweep_name, state, trigger, definition, created_at) VALUES ('w3', 's1', 'dmz', 'succeeded', 'schedule', '{}', ?)`, now.Add(time.Minute))
		sigs, err = healthSignals(ctx, cfg, st)
		if err != nil || len(sigs) != 1 {
			t.Fatalf("health after recovery: %+v %v", sigs, err)
		}
		ch, err := alerts.Sync(ctx, alert.KindHealth, sigs)
		if err != nil {
			t.Fatal(err)
		}
		cleared := 0
		for _, c := range ch {
			if c.Type == alert.ChangeCleared {
				cleared++
			}
		}
		if cleared != 3 {
			t.Fatalf("changes after recovery: %+v", ch)
		}
	})
}

// A live sensor whose capture stopped, or that saw nothing since the last
// look, raises a health alert; a capture file that ended does not.
func TestSensorHealth(t *testing.T) {
	s, err := passive.NewSensor(passive.SensorOptions{Read: "../../configs/demo/lab.pcap"}, func(discovery.Observation) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	live := &sensorWatch{name: "span0", live: true, sensor: s}
	file := &sensorWatch{name: "replay", sensor: s}
	last := map[string]passive.SensorStats{}
	if sigs := sensorHealth([]*sensorWatch{live, file}, last); len(sigs) != 0 {
		t.Fatalf("first look: %+v", sigs)
	}
	sigs := sensorHealth([]*sensorWatch{live, file}, last) // no packet since
	if len(sigs) != 1 || sigs[0].Key != "sensor span0" || sigs[0].Severity != alert.SeverityHigh {
		t.Fatalf("a silent live sensor: %+v", sigs)
	}
	why := "interface span0: link down"
	live.stopped.Store(&why)
	sigs = sensorHealth([]*sensorWatch{live}, last)
	if len(sigs) != 1 || sigs[0].Detail["error"] != why {
		t.Fatalf("a stopped sensor: %+v", sigs)
	}
}
