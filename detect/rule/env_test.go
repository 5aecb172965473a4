package rule

import (
	"testing"

	"github.com/breachwatch/breachwatch/event"
	"github.com/breachwatch/breachwatch/incident"
)

// A change from CloudTrail names the bare id as its store and the ARN as
// its id; an inventory store whose alias is the ARN is found either way,
// so a store known to hold no personal data is not taken for an unknown
// (personal) one, and categories come from the inventory.
func TestConfigEnvFindsStoreByARNAlias(t *testing.T) {
	inv := incident.NewInventory([]incident.Store{
		{ID: "exports", Categories: []string{"contact", "booking"}, Aliases: []string{"arn:aws:s3:::exports-eu"}},
		{ID: "build-cache", Aliases: []string{"arn:aws:ec2:eu-central-1:123456789012:snapshot/snap-01"}},
		{ID: "bastion", Categories: []string{"credentials"}, Aliases: []string{"arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0abc"}},
	}, true)
	tests := []struct {
		res             event.ConfigResource
		id              string
		known, personal bool
		firstCategory   string
	}{
		{event.ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket", Store: "s3://exports-eu"}, "exports", true, true, "contact"},
		{event.ConfigResource{ID: "arn:aws:s3:::exports-eu", Type: "bucket", Store: "exports-eu"}, "exports", true, true, "contact"},
		{event.ConfigResource{ID: "arn:aws:ec2:eu-central-1:123456789012:snapshot/snap-01", Type: "snapshot", Store: "snap-01"}, "build-cache", true, false, ""},
		{event.ConfigResource{ID: "sg-0abc", Type: "firewall", Store: "sg-0abc"}, "bastion", true, true, "credentials"},
		{event.ConfigResource{ID: "arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0abc", Type: "firewall", Store: "other"}, "bastion", true, true, "credentials"},
		{event.ConfigResource{ID: "arn:aws:s3:::elsewhere", Type: "bucket", Store: "s3://elsewhere"}, "s3://elsewhere", false, true, "unknown"},
	}
	for _, tt := range tests {
		c := &event.ConfigChange{ID: "c", Resource: tt.res, Setting: "public_access", After: []byte("true")}
		got := NewConfigEnv(c, inv).Store
		first := ""
		if len(got.Categories) > 0 {
			first = got.Categories[0]
		}
		if got.ID != tt.id || got.Known != tt.known || got.Personal != tt.personal || first != tt.firstCategory {
			t.Errorf("%+v: store %+v; want id %s, known %v, personal %v", tt.res, got, tt.id, tt.known, tt.personal)
		}
	}
}
