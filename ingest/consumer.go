package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

// ConsumerOptions configure the Kafka consumer.
type ConsumerOptions struct {
	Group       string // consumer group id
	AccessTopic string
	ConfigTopic string
	DLQSuffix   string // dead-letter topic = source topic + suffix

	MaxBatch      int           // most records per store write
	MaxWait       time.Duration // how long to wait to fill a batch once the first record is in
	MaxEventBytes int           // larger records are dead-lettered (in a CloudTrail log file: each record)
	// MaxFileBytes bounds a CloudTrail log file or JSON array of CloudTrail
	// records on the config topic (default event.DefaultMaxFileBytes);
	// larger records are dead-lettered whole.
	MaxFileBytes int
	// MaxClockSkew is how far ahead of this consumer's clock an event may
	// be dated (default event.DefaultMaxSkew); later ones are dead-lettered.
	MaxClockSkew time.Duration
	Now          func() time.Time // the receiving clock (default time.Now)

	// FetchMaxBytes and MaxConcurrentFetches bound how much fetched data
	// waits in memory, however far behind the consumer is: about
	// MaxConcurrentFetches × FetchMaxBytes as stored by the broker, that is
	// compressed if the producers compress (JSON often shrinks 4-6 times).
	FetchMaxBytes        int32
	MaxConcurrentFetches int
	// FetchMaxWait is how long the broker may hold a fetch that found no
	// new data (default 500ms, Kafka's own default). A held fetch keeps
	// its concurrency slot, so with more brokers than MaxConcurrentFetches
	// a long wait on a drained partition starves a broker that has data.
	FetchMaxWait time.Duration
	// MaxDrift aligns the partitions of a backlog by event time: one that
	// has records waiting and has delivered events more than MaxDrift
	// ahead of the slowest such partition is paused until that one catches
	// up (see aligner). 0 turns it off.
	MaxDrift time.Duration
	// holdUnknown replaces the aligner's holdUnknown (tests).
	holdUnknown time.Duration

	// RevokeWait bounds how long a revocation waits for the batches being
	// written (default 30s, half of the client's rebalance timeout).
	RevokeWait time.Duration

	Writers     int           // concurrent store writers (default 1)
	Backoff     Backoff       // for dead-letter produce retries
	LagInterval time.Duration // how often the lag metric is computed (default 10s)
}

func (o *ConsumerOptions) defaults() {
	if o.Group == "" {
		o.Group = "breachwatch"
	}
	if o.DLQSuffix == "" {
		o.DLQSuffix = ".dlq"
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 10_000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 250 * time.Millisecond
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = 2 << 20
	}
	if o.MaxConcurrentFetches <= 0 {
		o.MaxConcurrentFetches = 2
	}
	if o.FetchMaxWait <= 0 {
		o.FetchMaxWait = 500 * time.Millisecond
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff()
	}
	if o.Writers <= 0 {
		o.Writers = 1
	}
	if o.LagInterval <= 0 {
		o.LagInterval = 10 * time.Second
	}
	if o.RevokeWait <= 0 {
		o.RevokeWait = 30 * time.Second
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = event.DefaultMaxSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// PartitionAware is an optional interface of a Handoff: it is told which
// input partitions this consumer owns (by the Source names of
// event.Clock), so that a partition assigned but not yet delivering holds
// back detection's event-time watermark, and one revoked no longer does.
// The calls come from the consumer's rebalance callbacks.
type PartitionAware interface {
	Assigned(sources []string)
	Revoked(sources []string)
}

// EmptyAware is a PartitionAware next stage that is also told which of the
// partitions just assigned hold no records at all (their log is empty):
// such a partition need not hold the watermark back until its idle
// timeout, as a silent one does.
type EmptyAware interface {
	Empty(sources []string)
}

// ClockSource names a Kafka partition as event.Clock does.
func ClockSource(topic string, partition int32) string {
	return "kafka:" + topic + "/" + strconv.FormatInt(int64(partition), 10)
}

func clockSources(m map[string][]int32) []string {
	var out []string
	for topic, ps := range m {
		for _, p := range ps {
			out = append(out, ClockSource(topic, p))
		}
	}
	slices.Sort(out)
	return out
}

// Consumer reads the access and config topics as a member of a consumer
// group and writes what it reads to the store, at least once. It is a
// pipeline:
//
//   - the poller polls a batch (bounded in records and in time), decodes
//     it, and hands it to the writers and, in the same order, to the marker;
//   - the writers (Writers goroutines, so that the store can work on one
//     insert while the next is being encoded) each write a batch's valid
//     events through the Writer, which retries until the store acknowledges
//     them, then produce its invalid records to the dead-letter topic and
//     wait for the broker's acknowledgement;
//   - the detector hands each stored batch to the next stage (detection),
//     while the writers go on with the next batch;
//   - the marker takes the batches in poll order, waits for each to be
//     written and handed on, and only then marks its offsets, to be
//     committed in the background, on revocation and at shutdown.
//
// At most Writers+2 batches exist at once, and the poller takes a free
// batch before it polls, so while the store is slow or down fetching stops
// and memory stays bounded however large the backlog. A marked offset
// always means "stored": batches are marked in poll order, each after its
// own write. When partitions are revoked, the callback waits until every
// polled batch is handled before it commits, so a rebalance never commits
// past a record that was not handled. A crash loses only uncommitted
// offsets: those records are delivered again and the store, idempotent on
// event id, keeps one copy.
type Consumer struct {
	cl      *kgo.Client
	opts    ConsumerOptions
	w       *Writer
	next    Handoff // may be nil
	dlq     *deadLetter
	dec     event.Decoder
	m       *Metrics
	log     *zap.Logger
	pending pending       // batches polled and not yet handled
	sources map[tp]string // clock source names, built once (used by the poller only)
	parts   map[string]tp // the other way round
	align   *aligner
	// holdUntil: when the pacing plans again at the latest (poller only).
	holdUntil time.Time
}

type tp struct {
	topic     string
	partition int32
}

// job is one polled batch on its way through the pipeline. Jobs are reused.
type job struct {
	recs  []*kgo.Record // as polled; emptied once decoded
	batch event.Batch
	bad   []rejected
	// marks holds, per partition, a copy of the batch's last record with
	// only what marking needs, so that the polled records (and the fetch
	// buffers their values live in) are not kept while the batch is written.
	marks []*kgo.Record
	done  chan bool // a writer sends whether the job was stored and dead-lettered
	// behind: the partitions the poll left records of (see event.Clock).
	behind []tp
}

func (j *job) reset() {
	clear(j.recs)
	j.recs = j.recs[:0]
	j.batch.Reset()
	clear(j.bad)
	j.bad = j.bad[:0]
	clear(j.marks)
	j.marks = j.marks[:0]
}

// pending counts batches in the writers' hands; wait waits until none are.
type pending struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0 (nil before the first batch)
}

func (p *pending) add() {
	p.mu.Lock()
	if p.n == 0 {
		p.zero = make(chan struct{})
	}
	p.n++
	p.mu.Unlock()
}

func (p *pending) done() {
	p.mu.Lock()
	if p.n--; p.n == 0 {
		close(p.zero)
	}
	p.mu.Unlock()
}

// wait waits until no batch is pending, for at most limit (0: no limit),
// and reports whether none is.
func (p *pending) wait(limit time.Duration) bool {
	p.mu.Lock()
	n, zero := p.n, p.zero
	p.mu.Unlock()
	if n == 0 {
		return true
	}
	if limit <= 0 {
		<-zero
		return true
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-zero:
		return true
	case <-t.C:
		return false
	}
}

// NewConsumer builds the consumer's client. It does not contact the brokers:
// Run does, and keeps trying while they are unreachable.
// Stored batches are handed to next (which may be nil) before their offsets
// are committed.
func NewConsumer(k KafkaOptions, o ConsumerOptions, w *Writer, next Handoff, m *Metrics, log *zap.Logger) (*Consumer, error) {
	o.defaults()
	if o.AccessTopic == "" || o.ConfigTopic == "" || o.AccessTopic == o.ConfigTopic {
		return nil, fmt.Errorf("kafka consumer: need two distinct topics, got %q and %q", o.AccessTopic, o.ConfigTopic)
	}
	c := &Consumer{opts: o, w: w, next: next, m: m, log: log, sources: map[tp]string{},
		parts: map[string]tp{}, align: newAligner(o.MaxDrift),
		dec: event.Decoder{MaxBytes: o.MaxEventBytes, MaxFileBytes: o.MaxFileBytes, Now: o.Now, MaxSkew: o.MaxClockSkew}}
	if o.holdUnknown > 0 {
		c.align.hold = o.holdUnknown
	}
	opts, err := k.clientOpts(log)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.AccessTopic, o.ConfigTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(2*time.Second),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		// A record larger than these (a CloudTrail log file of up to
		// MaxFileBytes) still comes: brokers return the first record
		// batch of a partition whole, whatever its size (KIP-74), and the
		// client reads responses of up to BrokerMaxReadBytes.
		kgo.FetchMaxBytes(o.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(max(o.FetchMaxBytes/4, 1<<20)),
		kgo.BrokerMaxReadBytes(maxReadBytes(o.FetchMaxBytes, o.MaxFileBytes)),
		kgo.MaxConcurrentFetches(o.MaxConcurrentFetches),
		kgo.FetchMaxWait(o.FetchMaxWait),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if c.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	c.dlq = &deadLetter{cl: c.cl, suffix: o.DLQSuffix, backoff: o.Backoff, m: m, log: log, now: time.Now}
	return c, nil
}

// maxReadBytes is the largest fetch response the consumer reads: room for
// a full fetch plus a batch holding a log file of the largest size
// accepted (the one batch a broker sends past the fetch limits), at
// least franz-go's default of 100 MiB and at most its ceiling of 1 GiB.
func maxReadBytes(fetchMax int32, fileMax int) int32 {
	if fileMax <= 0 {
		fileMax = event.DefaultMaxFileBytes
	}
	n := int64(fetchMax) + 2*int64(fileMax)
	return int32(min(max(n, 100<<20), 1<<30))
}

// Ping checks that a broker answers.
func (c *Consumer) Ping(ctx context.Context) error { return c.cl.Ping(ctx) }

// Run consumes until ctx ends, then commits what was handled, leaves the
// group and closes the client. It returns nil after a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.shutdown()
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); c.reportLag(lagCtx, c.opts.LagInterval) }()
	defer func() { stopLag(); <-lagDone }()
	// Jobs: one being polled and decoded, one per writer, one being handed on.
	depth := c.opts.Writers + 1
	if c.next != nil {
		depth++
	}
	free := make(chan *job, depth)
	work := make(chan *job, depth)   // to the writers
	handed := make(chan *job, depth) // from the writers to the detector
	order := make(chan *job, depth)  // to the marker, in poll order
	for range depth {
		free <- &job{done: make(chan bool, 1)}
	}
	var writers, stages sync.WaitGroup
	for range c.opts.Writers {
		writers.Add(1)
		go func() { defer writers.Done(); c.write(ctx, work, handed) }()
	}
	stages.Add(2)
	go func() { defer stages.Done(); c.handOn(ctx, handed) }()
	go func() { defer stages.Done(); c.mark(order, free) }()
	defer func() {
		close(work)
		writers.Wait()
		close(handed)
		close(order)
		stages.Wait()
	}()
	for {
		var j *job
		select {
		case j = <-free: // before polling: never hold a poll while waiting for the writers
		case <-ctx.Done():
			return nil
		}
		fetches := c.pollPaced(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			free <- j
			c.cl.AllowRebalance() // nothing of this poll is marked; it will be redelivered
			return nil
		}
		c.fetchErrors(fetches)
		fetches.EachRecord(func(r *kgo.Record) { j.recs = append(j.recs, r) })
		// Partitions with records after those fetched: their clocks are
		// behind, not idle, while the consumer works through the backlog.
		j.behind = j.behind[:0]
		fetchedAt := time.Now()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			n := len(p.Records)
			if n == 0 {
				return
			}
			behind := p.Records[n-1].Offset+1 < p.HighWatermark
			if behind {
				j.behind = append(j.behind, tp{p.Topic, p.Partition})
			}
			c.align.fetched(tp{p.Topic, p.Partition}, behind, fetchedAt)
		})
		if len(j.recs) == 0 {
			c.pace(nil)
			free <- j
			c.cl.AllowRebalance()
			continue
		}
		c.decode(j)
		c.pace(&j.batch)
		c.pending.add()
		order <- j // never blocks: the channels can hold every job there is
		work <- j
		c.cl.AllowRebalance()
	}
}

// pollPaced polls, while the pacing has partitions behind, only until the
// first of them would lapse (see aligner.plan), so that the plan is made
// again then even if nothing comes.
func (c *Consumer) pollPaced(ctx context.Context) kgo.Fetches {
	if c.holdUntil.IsZero() {
		return c.poll(ctx)
	}
	pctx, cancel := context.WithDeadline(ctx, c.holdUntil)
	defer cancel()
	return c.poll(pctx)
}

// pace notes the event times of a decoded batch (b may be nil), pauses
// the partitions that are too far ahead of the slowest one behind and
// resumes those no longer so (see aligner).
func (c *Consumer) pace(b *event.Batch) {
	if c.align.maxDrift <= 0 {
		return
	}
	if b != nil {
		for _, ck := range b.Clocks {
			if k, ok := c.parts[ck.Source]; ok {
				c.align.observe(k, ck.Oldest)
			}
		}
	}
	var pause, resume map[string][]int32
	pause, resume, c.holdUntil = c.align.plan(time.Now())
	if len(resume) > 0 {
		c.cl.ResumeFetchPartitions(resume)
	}
	if len(pause) > 0 {
		c.cl.PauseFetchPartitions(pause)
	}
	if len(pause)+len(resume) > 0 {
		c.m.paused.Set(float64(c.align.pausedCount()))
	}
}

// decode splits a job's records into valid events and rejected records.
func (c *Consumer) decode(j *job) {
	b := &j.batch
	var nAccess, nConfig int
	for _, r := range j.recs {
		var err error
		switch r.Topic {
		case c.opts.AccessTopic:
			nAccess++
			b.Access = append(b.Access, event.AccessEvent{})
			if err = c.dec.Access(r.Value, &b.Access[len(b.Access)-1]); err != nil {
				b.Access = b.Access[:len(b.Access)-1]
			} else {
				b.Observe(c.source(r), b.Access[len(b.Access)-1].Time)
			}
		case c.opts.ConfigTopic:
			// A change, or CloudTrail: a record may hold none or several.
			// A bad record inside a log file (or array) is dead-lettered
			// alone; the file's other records are taken.
			nConfig++
			n := len(b.Config)
			var bad []event.RecordError
			if b.Config, bad, err = c.dec.ConfigRecords(r.Value, b.Config); err != nil {
				b.Config = b.Config[:n]
			}
			for i := n; i < len(b.Config); i++ {
				b.Observe(c.source(r), b.Config[i].Time)
			}
			for _, e := range bad {
				j.bad = append(j.bad, rejected{rec: r, err: e.Err, inner: true, index: e.Index, value: e.Raw})
			}
		}
		if err != nil {
			var e *event.Error
			if !errors.As(err, &e) {
				e = &event.Error{Kind: event.KindSyntax, Msg: err.Error()}
			}
			j.bad = append(j.bad, rejected{rec: r, err: e})
		}
	}
	c.m.consumed.WithLabelValues(c.opts.AccessTopic).Add(float64(nAccess))
	c.m.consumed.WithLabelValues(c.opts.ConfigTopic).Add(float64(nConfig))
	for _, k := range j.behind {
		if s, ok := c.sources[k]; ok {
			b.Behind(s)
		}
	}
	// Marks are cumulative per partition: the last record of each is enough.
	for i := len(j.recs) - 1; i >= 0; i-- {
		r := j.recs[i]
		if !slices.ContainsFunc(j.marks, func(m *kgo.Record) bool { return m.Topic == r.Topic && m.Partition == r.Partition }) {
			j.marks = append(j.marks, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch})
		}
	}
	clear(j.recs)
	j.recs = j.recs[:0]
}

// write is a writer: it stores each job's events and dead-letters its
// rejected records, then passes the job to the detector (or, if it could
// not finish it, straight back to the marker). Writers run concurrently;
// the store is idempotent and the marker restores order.
func (c *Consumer) write(ctx context.Context, work <-chan *job, handed chan<- *job) {
	for j := range work {
		if c.w.Write(ctx, &j.batch) != nil || c.dlq.send(ctx, j.bad) != nil {
			j.done <- false
			continue
		}
		handed <- j // never blocks: the channel can hold every job there is
	}
}

// handOn hands each stored batch to the next stage, then tells the marker
// the job is done.
func (c *Consumer) handOn(ctx context.Context, handed <-chan *job) {
	for j := range handed {
		if c.next != nil {
			c.next.Handle(ctx, &j.batch)
		}
		j.done <- true
	}
}

// mark takes the jobs in the order they were polled, waits for each to be
// written, and marks its offsets, so that a marked offset always means
// that every record before it in its partition is handled. Once a job could
// not be finished (ctx ended), no later job is marked either.
func (c *Consumer) mark(order <-chan *job, free chan<- *job) {
	stopped := false
	for j := range order {
		ok := <-j.done
		if stopped = stopped || !ok; !stopped {
			c.cl.MarkCommitRecords(j.marks...)
		}
		j.reset()
		c.pending.done()
		free <- j
	}
}

// poll returns up to MaxBatch records: what is buffered now, topped up for
// at most MaxWait once the first record is in.
func (c *Consumer) poll(ctx context.Context) kgo.Fetches {
	fs := c.cl.PollRecords(ctx, c.opts.MaxBatch)
	n := fs.NumRecords()
	if n == 0 || n >= c.opts.MaxBatch {
		return fs
	}
	lctx, cancel := context.WithTimeout(ctx, c.opts.MaxWait)
	defer cancel()
	for n < c.opts.MaxBatch && lctx.Err() == nil {
		more := c.cl.PollRecords(lctx, c.opts.MaxBatch-n)
		if more.IsClientClosed() {
			return append(fs, more...)
		}
		for _, f := range more {
			if !isContextFetch(f) {
				fs = append(fs, f)
			}
		}
		n += more.NumRecords()
	}
	return fs
}

// isContextFetch reports whether f is the fake fetch PollRecords injects
// when its context ends.
func isContextFetch(f kgo.Fetch) bool {
	if len(f.Topics) != 1 || f.Topics[0].Topic != "" || len(f.Topics[0].Partitions) != 1 {
		return false
	}
	err := f.Topics[0].Partitions[0].Err
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *Consumer) fetchErrors(fs kgo.Fetches) {
	fs.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		c.m.fetchErrors.WithLabelValues(topic).Inc()
		c.log.Warn("kafka fetch error", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
	})
}

// reportLag publishes, every interval until ctx ends, how many records the
// group has not committed yet on each topic: the end offset of every
// partition minus the group's committed offset (or the log start, for a
// partition with no commit). It keeps telling the truth while the consumer
// is stalled, e.g. during a store outage.
func (c *Consumer) reportLag(ctx context.Context, interval time.Duration) {
	adm := kadm.NewClient(c.cl)
	topics := []string{c.opts.AccessTopic, c.opts.ConfigTopic}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if lag, err := groupLag(ctx, adm, c.opts.Group, topics); err == nil {
			for _, topic := range topics {
				c.m.lag.WithLabelValues(topic).Set(float64(lag[topic]))
			}
		} else if ctx.Err() == nil {
			c.log.Debug("could not compute consumer lag", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func groupLag(ctx context.Context, adm *kadm.Client, group string, topics []string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	starts, ends, err := offsetBounds(ctx, adm, topics)
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	lag := map[string]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		from := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			from = s.Offset
		}
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok && o.At >= 0 {
			from = max(from, o.At)
		}
		lag[e.Topic] += max(e.Offset-from, 0)
	})
	return lag, nil
}

// source is the clock source name of a record's partition.
func (c *Consumer) source(r *kgo.Record) string {
	k := tp{r.Topic, r.Partition}
	s, ok := c.sources[k]
	if !ok {
		s = ClockSource(r.Topic, r.Partition)
		c.sources[k] = s
		c.parts[s] = k
	}
	return s
}

// assigned tells the next stage which partitions it now owns, and which
// of them are empty, and the pacing which have a backlog.
func (c *Consumer) assigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	var ea EmptyAware
	if pa, ok := c.next.(PartitionAware); ok {
		pa.Assigned(clockSources(m))
		ea, _ = c.next.(EmptyAware)
	}
	if ea == nil && c.align.maxDrift <= 0 {
		return
	}
	empty, backlog := assignedOffsets(ctx, kadm.NewClient(cl), c.opts.Group, m, c.align.maxDrift > 0)
	if ea != nil && len(empty) > 0 {
		ea.Empty(empty)
	}
	c.align.expect(backlog, time.Now())
}

// offsetBounds lists the first and the next offsets of the topics'
// partitions.
func offsetBounds(ctx context.Context, adm *kadm.Client, topics []string) (starts, ends kadm.ListedOffsets, err error) {
	if starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
		return nil, nil, err
	}
	ends, err = adm.ListEndOffsets(ctx, topics...)
	return starts, ends, err
}

// assignedOffsets lists, by clock source, the partitions of m whose log
// holds no records (start offset = end offset), and, if withBacklog, those
// with records after the group's committed offset (or the log start,
// where it has none). If the offsets cannot be listed it lists none: an
// empty partition left out waits for its idle timeout, a backlog left out
// is paced once it delivers.
func assignedOffsets(ctx context.Context, adm *kadm.Client, group string, m map[string][]int32, withBacklog bool) (empty []string, backlog []tp) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	starts, ends, err := offsetBounds(ctx, adm, topics)
	if err != nil {
		return nil, nil
	}
	var committed kadm.OffsetResponses
	if withBacklog {
		if committed, err = adm.FetchOffsets(ctx, group); err != nil {
			withBacklog = false
		}
	}
	for t, ps := range m {
		for _, p := range ps {
			s, ok1 := starts.Lookup(t, p)
			e, ok2 := ends.Lookup(t, p)
			if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
				continue
			}
			if s.Offset == e.Offset {
				empty = append(empty, ClockSource(t, p))
				continue
			}
			from := s.Offset
			if o, ok := committed.Lookup(t, p); withBacklog && ok && o.Err == nil && o.At >= 0 {
				from = max(from, o.At)
			}
			if withBacklog && from < e.Offset {
				backlog = append(backlog, tp{t, p})
			}
		}
	}
	slices.Sort(empty)
	return empty, backlog
}

// revoked commits what was handled before the partitions go to another
// member: it waits until every polled batch is handled (no poll runs
// meanwhile: BlockRebalanceOnPoll), for at most RevokeWait, then commits
// the marks. A store that stalls longer does not stall the group's
// rebalance: what is not handled yet is not marked, so the partitions'
// next owner gets it again (the store keeps one copy).
func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	c.unpace(cl, m)
	if !c.pending.wait(c.opts.RevokeWait) {
		c.log.Warn("partitions revoked while the store holds batches back; their records go to the next owner again",
			zap.Duration("waited", c.opts.RevokeWait))
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.log.Warn("commit on revoke failed; those records will be delivered again", zap.Error(err))
	}
	if pa, ok := c.next.(PartitionAware); ok {
		pa.Revoked(clockSources(m))
	}
}

// lost: the partitions are gone without a chance to commit (a session
// expired); their uncommitted records will be delivered again.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.log.Warn("kafka partitions lost; uncommitted records will be delivered again")
	c.unpace(c.cl, m)
	if pa, ok := c.next.(PartitionAware); ok {
		pa.Revoked(clockSources(m))
	}
}

// unpace forgets the pacing of partitions no longer owned and resumes
// those it paused: pauses outlive an assignment in the client.
func (c *Consumer) unpace(cl *kgo.Client, m map[string][]int32) {
	if resume := c.align.forget(m); len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
		c.m.paused.Set(float64(c.align.pausedCount()))
	}
}

func (c *Consumer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cl.CommitMarkedOffsets(ctx); err != nil {
		c.log.Warn("final commit failed; the last records will be delivered again", zap.Error(err))
	}
	c.cl.CloseAllowingRebalance()
}
