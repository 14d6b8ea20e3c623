package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/reckon-dev/reckon/cmdb/runner"
	"github.com/reckon-dev/reckon/inventory"
)

type reconcileAPI struct {
	s   *runner.Service
	inv *inventory.Inventory
}

// RegisterReconciliations adds the reconciliation, stale-CI and CMDB feed
// routes.
func (s *Server) RegisterReconciliations(svc *runner.Service, inv *inventory.Inventory) {
	h := &reconcileAPI{s: svc, inv: inv}
	s.Handle("POST /api/v1/reconciliations", RoleOperator, h.start)
	s.Handle("GET /api/v1/reconciliations/{id}", RoleViewer, h.get)
	s.Handle("GET /api/v1/cmdb/stale", RoleViewer, h.stale)
	s.Handle("GET /api/v1/cmdb/feed", RoleViewer, h.feed)
}

type reconcileRequest struct {
	DryRun bool `json:"dry_run"`
}

func (h *reconcileAPI) start(w http.ResponseWriter, r *http.Request) error {
	var req reconcileRequest
	if r.ContentLength != 0 {
		if err := DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	run, err := h.s.Start(r.Context(), "api", req.DryRun)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/reconciliations/"+run.ID)
	WriteJSON(w, http.StatusAccepted, run)
	return nil
}

func (h *reconcileAPI) get(w http.ResponseWriter, r *http.Request) error {
	run, err := h.s.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, runner.ErrNotFound) {
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, run)
	return nil
}

type staleList struct {
	// Run is the reconciliation the list comes from (empty before the first).
	Run   string         `json:"run"`
	Items []runner.CIRef `json:"items"`
}

func (h *reconcileAPI) stale(w http.ResponseWriter, r *http.Request) error {
	items, run, err := h.s.Stale(r.Context())
	if err != nil && !errors.Is(err, runner.ErrNotFound) {
		return err
	}
	WriteJSON(w, http.StatusOK, staleList{Run: run.ID, Items: items})
	return nil
}

// feedItem is one reconciled asset for a CMDB-side sync job.
type feedItem struct {
	AssetID    string              `json:"asset_id"`
	Verdict    string              `json:"verdict"`
	Identity   string              `json:"identity"`
	MACs       []string            `json:"macs"`
	IPs        []string            `json:"ips"`
	Hostnames  []string            `json:"hostnames"`
	Serials    []string            `json:"serials"`
	Vendor     string              `json:"vendor,omitempty"`
	OS         string              `json:"os,omitempty"`
	DeviceType string              `json:"device_type,omitempty"`
	CMDB       *inventory.CMDBLink `json:"cmdb,omitempty"`
	FirstSeen  time.Time           `json:"first_seen"`
	LastSeen   time.Time           `json:"last_seen"`
	// Changed is when the asset was last seen or reconciled, whichever is
	// later: a sync job passes the largest it got as the next since.
	Changed time.Time `json:"changed"`
}

type feedList struct {
	Items []feedItem `json:"items"`
	// Until is the largest changed time in items: the next call's since.
	Until time.Time `json:"until,omitzero"`
}

// feed lists the assets seen or reconciled since the since parameter
// (RFC 3339; all when absent), oldest change first, with their
// identifiers and verdicts.
func (h *reconcileAPI) feed(w http.ResponseWriter, r *http.Request) error {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return BadRequest(FieldError{Field: "since", Detail: "want an RFC 3339 time such as 2026-11-25T10:00:00Z"})
		}
		since = t
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return BadRequest(FieldError{Field: "limit", Detail: "want a positive number"})
		}
		limit = n
	}
	items := []feedItem{}
	h.inv.EachAsset(func(a *inventory.Asset) {
		s := a.Summary()
		changed := s.LastSeen
		if s.CMDB != nil && s.CMDB.Checked.After(changed) {
			changed = s.CMDB.Checked
		}
		if !since.IsZero() && changed.Before(since) {
			return
		}
		it := feedItem{AssetID: s.ID, Verdict: s.Status, Identity: s.Identity, MACs: s.MACs, IPs: s.IPs,
			Hostnames: s.Hostnames, Serials: []string{}, Vendor: s.Vendor, OS: s.OS, DeviceType: s.DeviceType,
			FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Changed: changed}
		if s.CMDB != nil {
			l := *s.CMDB
			it.CMDB = &l
		}
		for _, id := range a.Idents {
			if id.Kind.String() == "serial" {
				it.Serials = append(it.Serials, id.Value)
			}
		}
		items = append(items, it)
	})
	slices.SortFunc(items, func(a, b feedItem) int {
		if c := a.Changed.Compare(b.Changed); c != 0 {
			return c
		}
		if a.AssetID < b.AssetID {
			return -1
		}
		return 1
	})
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	out := feedList{Items: items}
	if len(items) > 0 {
		out.Until = items[len(items)-1].Changed
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}
