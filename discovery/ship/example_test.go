package ship_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/discovery/ship"
)

// A sensor ships what it captures: Add from the capture, Run until a
// signal, Close last. Unsent observations stay in the spool for the next
// start.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	token, err := ship.LoadToken(os.Getenv("SENSOR_TOKEN_FILE")) // else RECKON_TOKEN
	if err != nil {
		logger.Error("sensor", "err", err)
		return
	}
	spool, err := ship.Open(ship.Options{
		Dir:    "/var/lib/reckon/spool",
		Server: "https://reckon.example:8080",
		Token:  token,
		Sensor: "sensor-1",
		Logger: logger,
	})
	if err != nil {
		logger.Error("sensor", "err", err)
		return
	}
	defer spool.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		// The capture: normalised observations, from any number of goroutines.
		o := discovery.Observation{Source: "passive:arp", Time: time.Now(), MAC: "3c:fd:00:00:00:01", IP: "10.0.0.1"}
		if errs := o.Normalize(); len(errs) == 0 {
			_ = spool.Add(o)
		}
	}()
	_ = spool.Run(ctx) // returns once ctx is done and the last flush is over
	st := spool.Stats()
	logger.Info("sensor stopped", "shipped", st.Shipped, "pending_segments", st.Pending, "dropped", st.Dropped)
}
