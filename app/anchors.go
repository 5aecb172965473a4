package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/ingest"
	"github.com/breachwatch/breachwatch/tracker"
)

// anchorPublisher keeps the audit log's head outside the store, after every
// append: in the log ("audit head", seq and hash) and on a Kafka topic kept
// for ever. `audit verify --anchors` compares the chain with them: entries
// cut from its end, or a chain rewritten and hashed again, which the chain
// alone cannot show.
type anchorPublisher struct {
	cl    *kgo.Client
	topic string
	log   *zap.Logger
}

func newAnchorPublisher(k ingest.KafkaOptions, topic string, log *zap.Logger) (*anchorPublisher, error) {
	cl, err := ingest.NewProducer(k, log, kgo.DefaultProduceTopic(topic))
	if err != nil {
		return nil, fmt.Errorf("audit anchors: %w", err)
	}
	return &anchorPublisher{cl: cl, topic: topic, log: log}, nil
}

// publish logs the head and produces it (without waiting: a head that does
// not get out is followed by the next one, which covers it).
func (a *anchorPublisher) publish(h tracker.Anchor) {
	if h.Seq == 0 {
		return
	}
	a.log.Info("audit head", zap.Int64("seq", h.Seq), zap.String("hash", h.Hash))
	v, err := json.Marshal(h)
	if err != nil {
		return
	}
	a.cl.Produce(context.Background(), &kgo.Record{Topic: a.topic, Key: []byte("audit-head"), Value: v}, func(_ *kgo.Record, err error) {
		if err != nil && !errors.Is(err, kgo.ErrClientClosed) {
			a.log.Warn("could not publish the audit head; the next append publishes a newer one", zap.Int64("seq", h.Seq), zap.Error(err))
		}
	})
}

// close sends what is buffered (for at most 10 s) and closes the client.
func (a *anchorPublisher) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.cl.Flush(ctx)
	a.cl.Close()
}

// readAnchors reads anchors as JSON objects, one per line, with "seq" and
// "hash" (what the topic holds, and what the log's "audit head" lines
// hold: `grep '"audit head"' breachwatch.log` makes such a file). Lines
// without a hash are passed over; a line that is not JSON is an error.
func readAnchors(r io.Reader) ([]tracker.Anchor, error) {
	var out []tracker.Anchor
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var a tracker.Anchor
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("line %d: not a JSON anchor: %w", n, err)
		}
		if a.Hash == "" {
			continue
		}
		if a.Seq < 1 || len(a.Hash) != 64 {
			return nil, fmt.Errorf("line %d: want a sequence number ≥ 1 and a 64-digit hash", n)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// topicAnchors reads every anchor the topic holds, from its start to its
// end as of now.
func topicAnchors(ctx context.Context, k ingest.KafkaOptions, topic string) ([]tracker.Anchor, error) {
	adm, err := ingest.NewProducer(k, zap.NewNop())
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", topic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl, err := ingest.NewProducer(k, zap.NewNop(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []tracker.Anchor
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			var a tracker.Anchor
			if err := json.Unmarshal(r.Value, &a); err != nil || a.Seq < 1 || len(a.Hash) != 64 {
				bad = fmt.Errorf("%s partition %d offset %d: not an anchor", topic, r.Partition, r.Offset)
				return
			}
			out = append(out, a)
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
		if bad != nil {
			return nil, bad
		}
	}
	return out, nil
}
