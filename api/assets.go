package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory"
)

// InventoryOptions tune the inventory routes.
type InventoryOptions struct {
	// MaxBatch is the most observations one batch may carry (413 past it).
	MaxBatch int
	// SensorsSeen, when set, is told of the passive sensors named in each
	// accepted batch (for the health alert of a sensor that goes quiet);
	// its error is logged, never the caller's.
	SensorsSeen func(ctx context.Context, sensors []string, by string) error
}

type inventoryAPI struct {
	inv  *inventory.Inventory
	opts InventoryOptions
	log  *slog.Logger
}

// RegisterInventory adds the asset and observation routes.
func (s *Server) RegisterInventory(inv *inventory.Inventory, opts InventoryOptions) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 50000
	}
	h := &inventoryAPI{inv: inv, opts: opts, log: s.logger}
	s.Handle("POST /api/v1/observations", RoleOperator, h.postObservations)
	s.Handle("GET /api/v1/assets", RoleViewer, h.listAssets)
	s.Handle("GET /api/v1/assets/{id}", RoleViewer, h.getAsset)
	s.Handle("POST /api/v1/assets/{id}/merge", RoleOperator, h.mergeAsset)
	s.Handle("POST /api/v1/assets/{id}/split", RoleOperator, h.splitAsset)
}

type batchRequest struct {
	BatchID      string            `json:"batch_id"`
	Observations []json.RawMessage `json:"observations"`
}

const maxFieldErrors = 20

func (h *inventoryAPI) postObservations(w http.ResponseWriter, r *http.Request) error {
	var req batchRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	var errs []FieldError
	req.BatchID = strings.TrimSpace(req.BatchID)
	switch {
	case req.BatchID == "":
		errs = append(errs, FieldError{Field: "batch_id", Detail: "required: a unique id per batch makes retries safe"})
	case len(req.BatchID) > 200:
		errs = append(errs, FieldError{Field: "batch_id", Detail: "longer than 200 characters"})
	}
	if req.Observations == nil {
		errs = append(errs, FieldError{Field: "observations", Detail: "required: a list of observations"})
	}
	if len(req.Observations) > h.opts.MaxBatch {
		return NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("%d observations in one batch; the limit is %d: send smaller batches", len(req.Observations), h.opts.MaxBatch))
	}
	obs := make([]discovery.Observation, len(req.Observations))
	for i, raw := range req.Observations {
		if len(errs) >= maxFieldErrors {
			break
		}
		prefix := fmt.Sprintf("observations[%d]", i)
		if err := decodeObservation(raw, &obs[i]); err != nil {
			errs = append(errs, FieldError{Field: prefix + err.Field, Detail: err.Detail})
			continue
		}
		for _, fe := range obs[i].Normalize() {
			field := "." + fe.Field
			if strings.HasPrefix(fe.Field, "(") {
				field = ""
			}
			errs = append(errs, FieldError{Field: prefix + field, Detail: fe.Detail})
		}
	}
	if len(errs) > 0 {
		if len(errs) > maxFieldErrors {
			errs = errs[:maxFieldErrors]
		}
		return BadRequest(errs...)
	}
	tok, _ := TokenFrom(r.Context())
	res, err := h.inv.Ingest(r.Context(), req.BatchID, "token:"+tok.Name, obs, r.URL.Query().Get("wait") == "true")
	if errors.Is(err, inventory.ErrUnavailable) {
		return NewProblem(http.StatusServiceUnavailable, "the store cannot take the batch now; nothing was accepted, send it again")
	}
	if err != nil {
		return err
	}
	if h.opts.SensorsSeen != nil {
		var sensors []string
		for i := range obs {
			if obs[i].Sensor != "" && strings.HasPrefix(obs[i].Source, "passive:") && !slices.Contains(sensors, obs[i].Sensor) {
				sensors = append(sensors, obs[i].Sensor)
			}
		}
		if len(sensors) > 0 {
			if err := h.opts.SensorsSeen(r.Context(), sensors, "token:"+tok.Name); err != nil {
				h.log.Warn("recording the sensors of a batch failed", "err", err)
			}
		}
	}
	status := http.StatusOK
	if res.Pending {
		status = http.StatusAccepted
	}
	WriteJSON(w, status, res)
	return nil
}

// decodeObservation decodes one observation strictly, naming the bad field.
func decodeObservation(raw json.RawMessage, o *discovery.Observation) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(o)
	if err == nil {
		return nil
	}
	var ute *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &ute):
		return &FieldError{Field: "." + ute.Field, Detail: fmt.Sprintf("want %s, got JSON %s", jsonKind(ute.Type.Kind().String()), ute.Value)}
	case errors.As(err, &pe):
		return &FieldError{Field: ".time", Detail: fmt.Sprintf("%q is not an RFC 3339 time (2026-11-20T10:00:00Z)", pe.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &FieldError{Field: "." + strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Detail: "unknown field"}
	default:
		msg := err.Error()
		if strings.Contains(msg, "hostname") {
			return &FieldError{Field: ".hostnames", Detail: msg}
		}
		return &FieldError{Field: "", Detail: msg}
	}
}

var assetStatuses = []string{inventory.StatusNew, inventory.StatusManaged, inventory.StatusUnmanaged, inventory.StatusUnknown, inventory.StatusConflict}

func (h *inventoryAPI) listAssets(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := inventory.Filter{Status: q.Get("status"), Q: strings.TrimSpace(q.Get("q")), Source: q.Get("source"), Cursor: q.Get("cursor")}
	var errs []FieldError
	if f.Status != "" && !slices.Contains(assetStatuses, f.Status) {
		errs = append(errs, FieldError{Field: "status", Detail: fmt.Sprintf("%q: want one of %s", f.Status, strings.Join(assetStatuses, ", "))})
	}
	if v := q.Get("subnet"); v != "" {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			if a, aerr := netip.ParseAddr(v); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				errs = append(errs, FieldError{Field: "subnet", Detail: fmt.Sprintf("%q is not a CIDR like 10.0.0.0/24", v)})
			}
		}
		f.Subnet = p
	}
	if v := q.Get("seen_since"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			f.SeenSince = t
		} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
			f.SeenSince = time.Now().Add(-d)
		} else {
			errs = append(errs, FieldError{Field: "seen_since", Detail: fmt.Sprintf("%q: want an RFC 3339 time or a duration like 24h", v)})
		}
	}
	f.Limit = 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, FieldError{Field: "limit", Detail: fmt.Sprintf("%q: want a number from 1 to 1000", v)})
		}
		f.Limit = n
	}
	if len(errs) > 0 {
		return BadRequest(errs...)
	}
	// Write the page as the stored summaries, without decoding them: the
	// list is the API's hottest read.
	buf := listBufs.Get().(*bytes.Buffer)
	defer listBufs.Put(buf)
	buf.Reset()
	buf.WriteString(`{"items":[`)
	first := true
	next, err := h.inv.ListEach(r.Context(), f, func(sum []byte) {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.Write(sum)
	})
	switch {
	case errors.Is(err, inventory.ErrBadCursor):
		return BadRequest(FieldError{Field: "cursor", Detail: "not a cursor this server gave out"})
	case errors.Is(err, inventory.ErrUnavailable):
		return NewProblem(http.StatusServiceUnavailable, "the store is unavailable")
	case err != nil:
		return err
	}
	buf.WriteByte(']')
	if next != "" {
		buf.WriteString(`,"next_cursor":`)
		c, _ := json.Marshal(next)
		buf.Write(c)
	}
	buf.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

var listBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// assetError maps inventory errors to problems.
func assetError(w http.ResponseWriter, r *http.Request, err error) error {
	var merged *inventory.ErrMerged
	switch {
	case errors.As(err, &merged):
		w.Header().Set("Location", "/api/v1/assets/"+merged.Into)
		p := NewProblem(http.StatusMovedPermanently, fmt.Sprintf("asset %s was merged into %s", r.PathValue("id"), merged.Into))
		return p
	case errors.Is(err, inventory.ErrNotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	case errors.Is(err, inventory.ErrInvalid):
		return NewProblem(http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, inventory.ErrUnavailable):
		return NewProblem(http.StatusServiceUnavailable, "the store is unavailable")
	}
	return err
}

func (h *inventoryAPI) getAsset(w http.ResponseWriter, r *http.Request) error {
	d, err := h.inv.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return assetError(w, r, err)
	}
	WriteJSON(w, http.StatusOK, d)
	return nil
}

type mergeRequest struct {
	// Other is the asset folded into the one in the path.
	Other string `json:"other"`
}

func (h *inventoryAPI) mergeAsset(w http.ResponseWriter, r *http.Request) error {
	var req mergeRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Other == "" {
		return BadRequest(FieldError{Field: "other", Detail: "required: the id of the asset to fold into this one"})
	}
	tok, _ := TokenFrom(r.Context())
	s, err := h.inv.Merge(r.Context(), r.PathValue("id"), req.Other, "token:"+tok.Name)
	if err != nil {
		return assetError(w, r, err)
	}
	WriteJSON(w, http.StatusOK, s)
	return nil
}

type splitResponse struct {
	Asset    inventory.Summary `json:"asset"`
	NewAsset inventory.Summary `json:"new_asset"`
}

func (h *inventoryAPI) splitAsset(w http.ResponseWriter, r *http.Request) error {
	var spec inventory.SplitSpec
	if err := DecodeJSON(r, &spec); err != nil {
		return err
	}
	if len(spec.MACs)+len(spec.IPs)+len(spec.Hostnames)+len(spec.Identifiers) == 0 {
		return BadRequest(FieldError{Field: "macs", Detail: "name at least one of macs, ips, hostnames or identifiers to move to the new asset"})
	}
	tok, _ := TokenFrom(r.Context())
	a, b, err := h.inv.Split(r.Context(), r.PathValue("id"), spec, "token:"+tok.Name)
	if err != nil {
		return assetError(w, r, err)
	}
	WriteJSON(w, http.StatusOK, splitResponse{Asset: a, NewAsset: b})
	return nil
}
