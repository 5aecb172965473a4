// Package ingest moves events from producers into the store: Kafka consumers
// (at-least-once, with a dead-letter topic for bad records), the HTTP ingest
// endpoints, and the embedded Kafka-protocol broker used when no brokers are
// configured.
//
// Every Kafka client breachwatch uses is built here, from KafkaOptions.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
)

// KafkaOptions says how to reach the Kafka cluster.
type KafkaOptions struct {
	Brokers  []string
	ClientID string
	TLS      *tls.Config // nil for plain TCP
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
}

// clientOpts are the options every client shares: where, who, how to log.
func (o KafkaOptions) clientOpts(log *zap.Logger) ([]kgo.Opt, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	id := o.ClientID
	if id == "" {
		id = "breachwatch"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(id),
		kgo.WithLogger(kzap.New(log.Named("kafka"), kzap.Level(kgo.LogLevelWarn))),
	}
	if o.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(o.TLS.Clone()))
	}
	switch strings.ToUpper(o.SASLMechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASLUser, Pass: o.SASLPassword}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", o.SASLMechanism)
	}
	return opts, nil
}

// NewProducer builds a producing client: idempotent, acks from all in-sync
// replicas (franz-go's defaults), batches flushed after a short linger.
func NewProducer(o KafkaOptions, log *zap.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := o.clientOpts(log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return cl, nil
}

// EnsureTopics creates the topics that do not exist yet (with the cluster's
// default partitions and replication). Creation refused for lack of rights
// is reported in the error; topics that exist already are not an error.
func EnsureTopics(ctx context.Context, o KafkaOptions, log *zap.Logger, topics ...string) error {
	return EnsureTopicsWith(ctx, o, log, nil, topics...)
}

// EnsureTopicsWith is EnsureTopics with topic configuration (e.g.
// retention.ms), for the topics it creates.
func EnsureTopicsWith(ctx context.Context, o KafkaOptions, log *zap.Logger, configs map[string]*string, topics ...string) error {
	cl, err := NewProducer(o, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, -1, -1, configs, topics...)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	var errs []error
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}
