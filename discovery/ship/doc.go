// Package ship carries a sensor's observations to the central server
// (POST /api/v1/observations) through a bounded on-disk spool, so that an
// outage or a restart of the server, or of the sensor, loses nothing that
// fits in the spool.
//
// The spool is a directory of segment files, one JSON observation per line:
//
//	<dir>/lock                          flock: one process per spool
//	<dir>/<batch id>.open               the segment being written
//	<dir>/<batch id>.jsonl              sealed: fsynced, waiting to be shipped
//	<dir>/rejected/<batch id>.jsonl     observations the server refused (400),
//	<dir>/rejected/<batch id>.problem.json   with the server's answer
//	<dir>/rejected/<batch id>.bad       a segment with unreadable lines, kept
//
// A batch id is <sensor>-<unix nanos>-<random>, chosen when the segment is
// opened and carried by its file name, so a segment sent again after a crash
// or a lost answer carries the same id and the server, idempotent by batch
// id, applies it once. A segment is sealed (fsync, rename to .jsonl) when it
// holds BatchSize observations or is FlushInterval old; sealed segments are
// posted oldest first and deleted only once the server acknowledged them.
//
// The spool is bounded by MaxBytes: when full, the oldest sealed segments are
// deleted, counted in Stats.Dropped and logged, so a long outage costs the
// oldest observations and never the disk or the capture.
package ship
