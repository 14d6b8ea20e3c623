// Package inventory folds observations into assets, one per real device.
// Its sub-packages keep the data: store (the database and its migrations)
// and queue (River jobs and schedules over the same database).
package inventory
