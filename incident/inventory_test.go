package incident

import "testing"

func TestInventoryLookupARNAliases(t *testing.T) {
	inv := NewInventory([]Store{
		{ID: "exports", Categories: []string{"contact"}, Aliases: []string{"arn:aws:s3:::exports-eu"}},
		{ID: "bookings-db", Categories: []string{"booking"}, Aliases: []string{
			"arn:aws:rds:eu-central-1:123456789012:db:bookings-eu-1",
			"arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0abc",
			"arn:aws:ec2:us-east-1:123456789012:snapshot/snap-01",
		}},
		// Two stores whose ARNs share a bare id: the bare id names neither.
		{ID: "crm-eu", Categories: []string{"contact"}, Aliases: []string{"arn:aws:rds:eu-west-1:123456789012:db:crm"}},
		{ID: "crm-us", Categories: []string{"contact"}, Aliases: []string{"arn:aws:rds:us-east-1:123456789012:db:crm"}},
		{ID: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd", Categories: []string{"credentials"}},
	}, true)
	tests := []struct {
		id, want string
	}{
		{"exports", "exports"},
		{"arn:aws:s3:::exports-eu", "exports"},
		{"exports-eu", "exports"},      // the bare bucket name
		{"s3://exports-eu", "exports"}, // as the CloudTrail mapping names a bucket's store
		{"bookings-eu-1", "bookings-db"},
		{"sg-0abc", "bookings-db"},
		{"snap-01", "bookings-db"},
		{"1234abcd", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd"}, // an ARN as the store's own id
		{"crm", ""},
		{"arn:aws:rds:us-east-1:123456789012:db:crm", "crm-us"},
		{"db:bookings-eu-1", ""},
		{"eu-central-1", ""},
		{"arn:aws:s3:::other", ""},
	}
	for _, tt := range tests {
		s, known := inv.Lookup(tt.id)
		if known != (tt.want != "") || known && s.ID != tt.want || !known && s.ID != tt.id {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.id, s.ID, known, tt.want)
		}
	}

	// A change: by its store, else by its resource id.
	resources := []struct {
		store, id, want string
	}{
		{"s3://exports-eu", "arn:aws:s3:::exports-eu", "exports"},
		{"sg-0abc", "arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0abc", "bookings-db"},
		{"snap-01", "arn:aws:ec2:us-east-1:123456789012:snapshot/snap-01", "bookings-db"},
		{"crm", "arn:aws:rds:eu-west-1:123456789012:db:crm", "crm-eu"}, // the bare id is ambiguous; the ARN is not
		{"postgres-1", "arn:aws:s3:::exports-eu", "exports"},
		{"bookings-db", "arn:aws:s3:::exports-eu", "bookings-db"}, // the store first
		{"nowhere", "arn:aws:s3:::nowhere", ""},
	}
	for _, r := range resources {
		s, known := inv.LookupResource(r.store, r.id)
		if known != (r.want != "") || known && s.ID != r.want || !known && s.ID != r.store {
			t.Errorf("LookupResource(%q, %q) = %q, %v; want %q", r.store, r.id, s.ID, known, r.want)
		}
	}
	var none *Inventory
	if s, known := none.LookupResource("a", "b"); known || s.ID != "a" || !s.Personal() {
		t.Errorf("nil inventory: %+v %v", s, known)
	}
}
