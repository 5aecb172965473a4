package ingest

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/breachwatch/breachwatch/event"
)

// EmbeddedOptions configure the embedded broker.
type EmbeddedOptions struct {
	Addr       string   // host:port to listen on (default 127.0.0.1:9092)
	DataDir    string   // where the log is kept across restarts; "" keeps it in memory only
	SyncWrites bool     // fsync every produced batch before acknowledging it
	Partitions int32    // partitions of the topics it creates (default 4)
	Topics     []string // created at start if missing
	// MaxMessageBytes is the largest record batch producers may send
	// (Kafka's message.max.bytes; default DefaultEmbeddedMaxMessageBytes,
	// room for a CloudTrail log file of event.DefaultMaxFileBytes).
	MaxMessageBytes int
}

// DefaultEmbeddedMaxMessageBytes is the embedded broker's default
// message.max.bytes: Kafka's own default (1 MiB) would refuse CloudTrail
// log files, which run to several MiB.
const DefaultEmbeddedMaxMessageBytes = event.DefaultMaxFileBytes + 1<<20

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake): what
// breachwatch runs when no brokers are configured, so that producers such
// as kcat, the demo traffic and the very same consumer code work on one
// machine with nothing else installed.
//
// With a DataDir and SyncWrites, a record the broker acknowledged survives
// a crash of the process. It is one broker with no replication: use a real
// Kafka cluster in production.
type Embedded struct {
	c    *kfake.Cluster
	addr string
}

// StartEmbedded starts the broker.
func StartEmbedded(o EmbeddedOptions, log *zap.Logger) (*Embedded, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:9092"
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultEmbeddedMaxMessageBytes
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded kafka: address %q: bad port", o.Addr)
	}
	if port == 0 {
		// kfake treats port 0 as "pick one"; find it ourselves so that
		// the address we report is the one we listen on.
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("embedded kafka: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	listenAddr := net.JoinHostPort(host, strconv.Itoa(port))
	opts := []kfake.Opt{
		kfake.Ports(port),
		// kfake listens on 127.0.0.1; honour the configured host.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, listenAddr) }),
		kfake.DefaultNumPartitions(int(o.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(o.MaxMessageBytes)}),
		kfake.WithLogger(kfakeLogger{log.Named("embedded-kafka")}),
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(o.Partitions, o.Topics...))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
		if o.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on %s: %w", listenAddr, err)
	}
	return &Embedded{c: c, addr: listenAddr}, nil
}

// Addr is the address producers and consumers connect to.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker, flushing its log to disk.
func (e *Embedded) Close() { e.c.Close() }

type kfakeLogger struct{ log *zap.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Sugar().Errorf(msg, args...)
	case kfake.LogLevelWarn:
		l.log.Sugar().Warnf(msg, args...)
	}
}
