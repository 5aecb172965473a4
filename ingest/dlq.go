package ingest

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

// Headers breachwatch adds to a dead-lettered record. The record's key,
// value and own headers are kept as they were; for one bad record of a
// CloudTrail log file (or array) the value is that record alone, and
// HeaderSourceIndex says where it was in the file.
const (
	HeaderError           = "breachwatch.error"       // the reason, e.g. `field "actor.type": must be one of ...`
	HeaderErrorKind       = "breachwatch.error.kind"  // syntax, missing, type, value or too_large
	HeaderErrorField      = "breachwatch.error.field" // the field at fault, when there is one
	HeaderSourceTopic     = "breachwatch.source.topic"
	HeaderSourcePartition = "breachwatch.source.partition"
	HeaderSourceOffset    = "breachwatch.source.offset"
	HeaderRejectedAt      = "breachwatch.rejected_at"
	// HeaderSourceIndex is set for a record taken out of a CloudTrail log
	// file or JSON array: its index in Records (or the array), from 0.
	HeaderSourceIndex = "breachwatch.source.index"
	// HeaderTruncated is set, to the original size, when the value was too
	// large for the dead-letter topic and only its beginning was kept.
	HeaderTruncated = "breachwatch.truncated"
)

// truncateTo is how much of a value too large for the dead-letter topic is kept.
const truncateTo = 64 << 10

// rejected is a record that failed validation, or one record of a
// CloudTrail log file (or array) in it that did.
type rejected struct {
	rec *kgo.Record
	err *event.Error
	// inner: only the record at index of the file failed; value is its
	// bytes (within rec.Value).
	inner bool
	index int
	value []byte
}

// deadLetter writes rejected records to <topic><suffix> and waits until the
// broker has acknowledged every one, retrying with backoff until ctx ends.
type deadLetter struct {
	cl      *kgo.Client
	suffix  string
	backoff Backoff
	m       *Metrics
	log     *zap.Logger
	now     func() time.Time
}

func (d *deadLetter) record(r rejected) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.rec.Headers)+8)
	hs = append(hs, r.rec.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(r.err.Error())},
		kgo.RecordHeader{Key: HeaderErrorKind, Value: []byte(r.err.Kind)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.rec.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(r.rec.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, r.rec.Offset, 10)},
		kgo.RecordHeader{Key: HeaderRejectedAt, Value: d.now().UTC().AppendFormat(nil, time.RFC3339)},
	)
	if r.err.Field != "" {
		hs = append(hs, kgo.RecordHeader{Key: HeaderErrorField, Value: []byte(r.err.Field)})
	}
	value := r.rec.Value
	if r.inner {
		hs = append(hs, kgo.RecordHeader{Key: HeaderSourceIndex, Value: strconv.AppendInt(nil, int64(r.index), 10)})
		value = r.value
	}
	return &kgo.Record{Topic: r.rec.Topic + d.suffix, Key: r.rec.Key, Value: value, Headers: hs}
}

// send dead-letters rs. It returns only when every record is acknowledged
// (nil) or ctx has ended (its error).
func (d *deadLetter) send(ctx context.Context, rs []rejected) error {
	if len(rs) == 0 {
		return nil
	}
	pending := make([]*kgo.Record, len(rs))
	for i, r := range rs {
		pending[i] = d.record(r)
	}
	for attempt := 1; ; attempt++ {
		var failed []*kgo.Record
		var lastErr error
		for _, res := range d.cl.ProduceSync(ctx, pending...) {
			if res.Err == nil {
				continue
			}
			// A retry is a new produce of a new record.
			r := &kgo.Record{Topic: res.Record.Topic, Key: res.Record.Key, Value: res.Record.Value, Headers: res.Record.Headers}
			if errors.Is(res.Err, kerr.MessageTooLarge) && len(r.Value) > truncateTo {
				// Keep what fits; the headers still say what was wrong.
				r.Headers = append(r.Headers[:len(r.Headers):len(r.Headers)], kgo.RecordHeader{
					Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(r.Value)), 10)})
				r.Value = r.Value[:truncateTo]
			}
			failed = append(failed, r)
			lastErr = res.Err
		}
		if len(failed) == 0 {
			for _, r := range rs {
				d.m.deadLettered.WithLabelValues(r.rec.Topic, string(r.err.Kind)).Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		delay := d.backoff.Delay(attempt)
		d.log.Warn("dead-letter write failed; holding the batch and retrying", zap.String("topic", failed[0].Topic),
			zap.Int("records", len(failed)), zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(lastErr))
		if err := sleep(ctx, delay); err != nil {
			return err
		}
		pending = failed
	}
}
