package detect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/internal/jsonhttp"
)

// Backfills runs backfills (Engine.Backfill) in the background, one at a
// time, each on an engine of its own reporting to the live sink, and serves
// their progress. It is safe for concurrent use.
type Backfills struct {
	// NewEngine builds a fresh engine with the running rule set and the
	// live engine's options, reporting to the live sink.
	NewEngine func() (*Engine, error)
	// Latest is the newest stored event time (no later than now).
	Latest          func(ctx context.Context) (time.Time, error)
	ExposureHorizon time.Duration
	Now             func() time.Time
	Log             *zap.Logger

	mu   sync.Mutex
	jobs map[string]*BackfillJob
	busy bool
}

// BackfillJob is one backfill and how far it came.
type BackfillJob struct {
	ID       string    `json:"id"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	State    string    `json:"state"` // running, done, failed
	Reached  time.Time `json:"reached,omitzero"`
	Events   int       `json:"events"`
	Findings int       `json:"findings"` // new or changed findings handed on
	// Retained: findings stored for the time that the history no longer
	// yields and that no other finding took over, left as they were.
	Retained int `json:"retained"`
	// Live: stored findings whose evidence goes past what the backfill
	// read (live detection took events of them since it began), left to
	// live detection.
	Live     int       `json:"live"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// ErrBackfillRunning: one backfill runs at a time.
var ErrBackfillRunning = errors.New("a backfill is running already; wait for it to finish")

// Start begins a backfill of [from, to) in the background, until ctx ends.
func (b *Backfills) Start(ctx context.Context, from, to time.Time) (BackfillJob, error) {
	if !from.Before(to) {
		return BackfillJob{}, errors.New("from must be before to")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy {
		return BackfillJob{}, ErrBackfillRunning
	}
	eng, err := b.NewEngine()
	if err != nil {
		return BackfillJob{}, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	job := &BackfillJob{ID: "bf-" + hex.EncodeToString(id[:]), From: from.UTC(), To: to.UTC(), State: "running", Started: b.Now().UTC()}
	if b.jobs == nil {
		b.jobs = map[string]*BackfillJob{}
	}
	b.jobs[job.ID], b.busy = job, true
	go b.run(ctx, eng, job)
	return *job, nil
}

func (b *Backfills) run(ctx context.Context, eng *Engine, job *BackfillJob) {
	b.Log.Info("backfill started", zap.String("id", job.ID), zap.Time("from", job.From), zap.Time("to", job.To))
	p, err := func() (Progress, error) {
		latest, err := b.Latest(ctx)
		if err != nil {
			return Progress{}, err
		}
		return eng.Backfill(ctx, job.From, job.To, latest, b.ExposureHorizon, func(p Progress) { b.update(job, p, "") })
	}()
	state, msg := "done", ""
	if err != nil {
		state, msg = "failed", "the backfill stopped: "+err.Error()
		b.Log.Warn("backfill failed", zap.String("id", job.ID), zap.Error(err))
	}
	b.update(job, p, state)
	b.mu.Lock()
	job.Error, job.Finished, b.busy = msg, b.Now().UTC(), false
	b.mu.Unlock()
	b.Log.Info("backfill finished", zap.String("id", job.ID), zap.String("state", state), zap.Int("events", p.Events),
		zap.Int("findings", p.Findings), zap.Int("retained", p.Retained), zap.Int("live", p.Live))
}

func (b *Backfills) update(job *BackfillJob, p Progress, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	job.Events, job.Findings, job.Retained, job.Live = p.Events, p.Findings, p.Retained, p.Live
	if p.Reached.After(job.Reached) {
		job.Reached = p.Reached
	}
	if state != "" {
		job.State = state
	}
}

// running is the id of the backfill that runs, if any.
func (b *Backfills) running() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, j := range b.jobs {
		if j.State == "running" {
			return id
		}
	}
	return ""
}

// Get returns a backfill by id.
func (b *Backfills) Get(id string) (BackfillJob, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[id]
	if !ok {
		return BackfillJob{}, false
	}
	return *j, true
}

// StartHandler serves POST /api/v1/backfill {"from": T, "to": T}: 202 with
// the job, 409 while another runs. ctx is the server's: the backfill
// outlives the request.
func (b *Backfills) StartHandler(ctx context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			jsonhttp.Error(w, http.StatusBadRequest, `send {"from": RFC 3339 time, "to": RFC 3339 time (default now)}: `+err.Error())
			return
		}
		now := b.Now()
		if in.From.IsZero() {
			jsonhttp.Error(w, http.StatusBadRequest, `field "from" is missing: send {"from": RFC 3339 time, "to": RFC 3339 time (default now)}`)
			return
		}
		if in.To.IsZero() {
			in.To = now
		}
		if in.To.After(now.Add(time.Hour)) || in.From.Before(now.AddDate(-10, 0, 0)) {
			jsonhttp.Error(w, http.StatusBadRequest, "from and to must lie within the last ten years and not in the future")
			return
		}
		job, err := b.Start(ctx, in.From, in.To)
		switch {
		case errors.Is(err, ErrBackfillRunning):
			msg := err.Error()
			if id := b.running(); id != "" {
				msg += " (" + id + ", GET /api/v1/backfill/" + id + ")"
			}
			jsonhttp.Error(w, http.StatusConflict, msg)
		case err != nil && !in.From.Before(in.To):
			jsonhttp.Error(w, http.StatusBadRequest, "from must be before to")
		case err != nil:
			b.Log.Warn("could not start a backfill", zap.Error(err))
			jsonhttp.Error(w, http.StatusInternalServerError, "could not start the backfill")
		default:
			jsonhttp.Write(w, http.StatusAccepted, job)
		}
	})
}

// GetHandler serves GET /api/v1/backfill/{id}.
func (b *Backfills) GetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		job, ok := b.Get(r.PathValue("id"))
		if !ok {
			jsonhttp.Error(w, http.StatusNotFound, "no such backfill")
			return
		}
		jsonhttp.Write(w, http.StatusOK, job)
	})
}
