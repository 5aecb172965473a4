package app

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/web"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsMatchTheContract(t *testing.T) {
	o, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.HTTP.Addr != "127.0.0.1:8080" || o.Kafka.Embedded.Addr != "127.0.0.1:9092" || o.DataDir != "./data" ||
		len(o.Kafka.Brokers) != 0 || len(o.ClickHouse.Addr) != 0 {
		t.Errorf("defaults: http %s, embedded kafka %s, data %s, brokers %v, clickhouse %v",
			o.HTTP.Addr, o.Kafka.Embedded.Addr, o.DataDir, o.Kafka.Brokers, o.ClickHouse.Addr)
	}
	if o.Kafka.Topics.Access != "breachwatch.access" || o.Kafka.Topics.Config != "breachwatch.config" || o.Kafka.DLQSuffix != ".dlq" {
		t.Errorf("default topics %+v %q", o.Kafka.Topics, o.Kafka.DLQSuffix)
	}
	// A CloudTrail log file of the largest default size fits in an HTTP
	// request, with room for other lines.
	if o.Ingest.MaxEventBytes != 64<<10 || o.Ingest.MaxFileBytes != 16<<20 || o.Ingest.HTTPMaxBodyBytes <= o.Ingest.MaxFileBytes {
		t.Errorf("default ingest limits %+v", o.Ingest)
	}
}

func TestLoadLayers(t *testing.T) {
	path := writeFile(t, "c.yaml", `
data_dir: /var/lib/bw
kafka:
  brokers: [k1:9092, k2:9092]
  topics: {access: acc}
  batch_max_wait: 1s
  fetch_max_bytes: 8MiB
clickhouse:
  addr: [ch:9000]
  password_file: `+writeFile(t, "pw", "s3cret\n")+`
`)
	env := []string{"PATH=/bin", "BREACHWATCH_KAFKA_GROUP=from-env", "BREACHWATCH_DATA_DIR=/env/dir",
		"BREACHWATCH_KAFKA_SASL_PASSWORD=sasl-pw"}
	o, err := Load(path, env, []string{"data_dir=/flag/dir", "demo.rate=5"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"file list", strings.Join(o.Kafka.Brokers, ","), "k1:9092,k2:9092"},
		{"file keeps other defaults", o.Kafka.Topics.Config, "breachwatch.config"},
		{"file value", o.Kafka.Topics.Access, "acc"},
		{"duration", time.Duration(o.Kafka.BatchMaxWait), time.Second},
		{"byte size", int64(o.Kafka.FetchMaxBytes), int64(8 << 20)},
		{"env over default", o.Kafka.Group, "from-env"},
		{"flag over env over file", o.DataDir, "/flag/dir"},
		{"password file", o.ClickHouse.Password, "s3cret"},
		{"secret from env", o.Kafka.SASL.Password, "sasl-pw"},
		{"flag", o.Demo.Rate, 5.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      []string
		override []string
		want     string
	}{
		{"unknown top key", "kafak:\n  brokers: [a:1]\n", nil, nil, `line 1: "kafak": unknown key`},
		{"unknown nested key", "kafka:\n  topics:\n    acess: x\n", nil, nil, `line 3: "kafka.topics.acess": unknown key`},
		{"unknown key in list", "auth:\n  tokens:\n    - name: a\n      rol: admin\n", nil, nil, `line 4: "auth.tokens[0].rol": unknown key`},
		{"secret inline", "clickhouse:\n  password: hunter2\n", nil, nil, `"clickhouse.password": secrets are not read from the config file; set BREACHWATCH_CLICKHOUSE_PASSWORD or use password_file`},
		{"bad duration", "kafka:\n  batch_max_wait: soon\n", nil, nil, "want a duration"},
		{"bad size", "ingest:\n  max_event_bytes: 12 parsecs\n", nil, nil, "want a size"},
		{"wrong type", "demo:\n  rate: fast\n", nil, nil, `line 2: "demo.rate": cannot unmarshal`},
		{"unknown env", "", []string{"BREACHWATCH_KAFKA_BROKER=x:1"}, nil, "unknown environment variable BREACHWATCH_KAFKA_BROKER"},
		{"bad env value", "", []string{"BREACHWATCH_DEMO_ENABLED=maybe"}, nil, "BREACHWATCH_DEMO_ENABLED: want true or false"},
		{"unknown override", "", nil, []string{"kafka.brokerz=x"}, `unknown key "kafka.brokerz"`},
		{"bad addr", "", nil, []string{"http.addr=8080"}, "http.addr: want host:port"},
		{"same topics", "", nil, []string{"kafka.topics.config=breachwatch.access"}, "three different"},
		{"anchors on the access topic", "", nil, []string{"kafka.topics.anchors=breachwatch.access"}, "three different"},
		{"no anchors topic", "", nil, []string{"kafka.topics.anchors="}, "three different"},
		{"bad level", "", nil, []string{"log.level=loud"}, "log.level"},
		{"empty dlq suffix", "kafka:\n  dlq_suffix: ''\n", nil, nil, "kafka.dlq_suffix"},
		{"file limit below event limit", "ingest:\n  max_event_bytes: 1MiB\n  max_file_bytes: 512KiB\n", nil, nil, "ingest.max_file_bytes: want at least ingest.max_event_bytes"},
		{"file limit too large", "", nil, []string{"ingest.max_file_bytes=1GiB"}, "ingest.max_file_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "c.yaml", tt.yaml)
			}
			_, err := Load(path, tt.env, tt.override)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	secret := "a-long-enough-secret-for-tests-1234"
	sum := sha256.Sum256([]byte("another-long-enough-secret-000000"))
	file := writeFile(t, "tok", secret+"\n")
	getenv := func(k string) string {
		return map[string]string{"APP_TOKEN": "app-token-long-enough-0123456789", "SHORT": "abc"}[k]
	}
	good := Options{Auth: AuthOptions{Tokens: []TokenOptions{
		{Name: "shipper", Role: "ingest", TokenFile: file},
		{Name: "product", Role: "app", Tenants: []string{"cust-1"}, TokenEnv: "APP_TOKEN"},
		{Name: "ops", Role: "admin", TokenSHA256: hex.EncodeToString(sum[:])},
	}}}
	toks, err := good.tokens(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 || toks[0].Hash != web.HashToken(secret) || toks[1].Hash != web.HashToken("app-token-long-enough-0123456789") ||
		toks[2].Hash != sum || toks[1].Role != web.RoleApp || toks[1].Tenants[0] != "cust-1" {
		t.Errorf("tokens resolved wrongly: %+v", toks)
	}

	bad := []struct {
		tok  TokenOptions
		want string
	}{
		{TokenOptions{Role: "ingest", TokenFile: file}, "name is required"},
		{TokenOptions{Name: "x", Role: "root", TokenFile: file}, `role "root"`},
		{TokenOptions{Name: "x", Role: "app", TokenFile: file}, "needs the tenants"},
		{TokenOptions{Name: "x", Role: "engineer", Tenants: []string{"a"}, TokenFile: file}, "app tokens only"},
		{TokenOptions{Name: "x", Role: "engineer"}, "exactly one of"},
		{TokenOptions{Name: "x", Role: "engineer", TokenFile: file, TokenEnv: "APP_TOKEN"}, "exactly one of"},
		{TokenOptions{Name: "x", Role: "engineer", TokenEnv: "SHORT"}, "shorter than 24"},
		{TokenOptions{Name: "x", Role: "engineer", TokenEnv: "UNSET"}, "UNSET is empty or unset"},
		{TokenOptions{Name: "x", Role: "engineer", TokenSHA256: "abc"}, "64 hex digits"},
		{TokenOptions{Name: "x", Role: "engineer", TokenFile: "/nonexistent"}, "token_file"},
	}
	for _, b := range bad {
		o := Options{Auth: AuthOptions{Tokens: []TokenOptions{b.tok}}}
		if _, err := o.tokens(getenv); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: got %v, want %q", b.tok, err, b.want)
		}
	}
	dup := Options{Auth: AuthOptions{Tokens: []TokenOptions{good.Auth.Tokens[0], good.Auth.Tokens[0]}}}
	if _, err := dup.tokens(getenv); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"65536": 65536, "64KiB": 64 << 10, "16MiB": 16 << 20, "1 GiB": 1 << 30, "2MB": 2e6, "0": 0} {
		var b ByteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1TiB", "99999999999GiB"} {
		var b ByteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	env := []string{"BREACHWATCH_CLICKHOUSE_PASSWORD=x"}
	for _, path := range []string{"../deploy/breachwatch.example.yaml"} {
		dir := t.TempDir()
		// The example names token files under /run/secrets; give them here.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "/run/secrets/", dir+"/")
		for _, name := range []string{"breachwatch-shipper-token", "breachwatch-oncall-token", "breachwatch-dpo-token", "breachwatch-app-token", "kafka-password", "slack-bot-token", "slack-signing-secret", "sendgrid-api-key"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("example-secret-long-enough-0123456789\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o, err := Load(writeFile(t, "example.yaml", text), env, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := o.tokens(func(string) string { return "" }); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// TestPrintedConfigLoadsBack: what `breachwatch config` prints is a valid
// configuration that gives the same options.
func TestPrintedConfigLoadsBack(t *testing.T) {
	o := Defaults()
	o.Kafka.Brokers = []string{"k:9092"}
	o.Kafka.BatchMaxWait = Duration(1500 * time.Millisecond)
	o.Ingest.MaxEventBytes = 100_000
	out, err := yaml.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(writeFile(t, "printed.yaml", string(out)), nil, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	again, _ := yaml.Marshal(back)
	if string(again) != string(out) {
		t.Errorf("round trip changed the options:\n%s\n%s", out, again)
	}
}

// TestConfigurationDocCoversEveryKey keeps docs/configuration.md honest.
func TestConfigurationDocCoversEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	o := Defaults()
	for _, s := range settersOf(&o).byEnv {
		if !strings.Contains(string(doc), "`"+s.key+"`") && !strings.Contains(string(doc), s.env) {
			t.Errorf("docs/configuration.md does not mention %s (%s)", s.key, s.env)
		}
	}
}
