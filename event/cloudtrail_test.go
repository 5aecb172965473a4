package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const ctDir = "testdata/cloudtrail"

func ctLoad(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ctDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Actors of the samples.
var (
	ctAlice     = Actor{ID: "arn:aws:iam::123456789012:user/Alice", Type: ActorEmployee}
	ctRoot      = Actor{ID: "arn:aws:iam::123456789012:root", Type: ActorEmployee}
	ctBob       = Actor{ID: "arn:aws:sts::123456789012:federated-user/bob", Type: ActorEmployee}
	ctCarol     = Actor{ID: "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DBA_0123456789abcdef/carol@example.com", Type: ActorEmployee}
	ctTerraform = Actor{ID: "arn:aws:sts::123456789012:assumed-role/deploy/terraform", Type: ActorService}
	ctDeploy    = Actor{ID: "arn:aws:sts::123456789012:assumed-role/deploy/deploy-session", Type: ActorService}
	ctMallory   = Actor{ID: "arn:aws:sts::123456789012:assumed-role/admin/mallory", Type: ActorService}
	ctConfigSvc = Actor{ID: "config.amazonaws.com", Type: ActorService}
	ctRedTeam   = Actor{ID: "arn:aws:iam::123456789012:user/redteam", Type: ActorEmployee}
)

func storeDefaulted(c ConfigChange) ConfigChange {
	c.StoreDefaulted = true
	return c
}

func ctRes(id, typ, store, region string) ConfigResource {
	return ConfigResource{ID: id, Type: typ, Store: store, Provider: "aws", Region: region}
}

func ctBucket(name, region string) ConfigResource {
	return ctRes("arn:aws:s3:::"+name, "bucket", "s3://"+name, region)
}

// ctChange is an expected change; before "" means none.
func ctChange(id, at string, res ConfigResource, setting, before, after string, actor Actor) ConfigChange {
	t, ok := ParseTime(at)
	if !ok {
		panic("bad time " + at)
	}
	c := ConfigChange{ID: id, Time: t, Resource: res, Setting: setting, After: json.RawMessage(after),
		Actor: &actor, Source: "cloudtrail"}
	if before != "" {
		c.Before = json.RawMessage(before)
	}
	return c
}

func TestConfigRecordCloudTrailSamples(t *testing.T) {
	var (
		exportsEU   = ctBucket("exports-eu", "eu-west-1")
		sg          = ctRes("arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0123456789abcdef0", "firewall", "sg-0123456789abcdef0", "eu-central-1")
		acl         = ctRes("arn:aws:ec2:eu-central-1:123456789012:network-acl/acl-0a1b2c3d4e5f67890", "firewall", "acl-0a1b2c3d4e5f67890", "eu-central-1")
		orgAudit    = ctRes("arn:aws:cloudtrail:us-east-1:123456789012:trail/org-audit", "log_sink", "org-audit", "us-east-1")
		key         = ctRes("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "key", "1234abcd-12ab-34cd-56ef-1234567890ab", "eu-west-1")
		fn          = ctRes("arn:aws:lambda:us-west-2:123456789012:function:export-bookings", "function", "export-bookings", "us-west-2")
		resolverLog = ctRes("arn:aws:route53resolver:eu-central-1:123456789012:resolver-query-log-config/rqlc-8ca61fe7c0e1d2f3",
			"log_sink", "rqlc-8ca61fe7c0e1d2f3", "eu-central-1")
		stratusLog = ctRes("arn:aws:route53resolver:us-east-1:123456789012:resolver-query-log-config/rqlc-5d6e7f8091a2b3c4",
			"log_sink", "rqlc-5d6e7f8091a2b3c4", "us-east-1")
		rdpSG = ctRes("arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0c3d4e5f6a7b80002", "firewall", "sg-0c3d4e5f6a7b80002", "eu-central-1")
	)
	tests := map[string][]ConfigChange{
		// S3
		"s3_put_bucket_acl_public_grant.json": {ctChange("cdc4b7ed-e171-4cef-975a-ad829d4123e8", "2026-11-20T08:00:00Z",
			exportsEU, "public_access", "", "true", ctAlice)},
		"s3_put_bucket_acl_private.json": {ctChange("0e1b2f3a-4c5d-4e6f-8a9b-0c1d2e3f4a5b", "2026-11-20T09:30:00Z",
			exportsEU, "public_access", "", "false", ctAlice)},
		"s3_put_bucket_acl_canned.json": {ctChange("7f3e4c1a-2b6d-4f0e-9a8c-1d2e3f4a5b6c", "2026-11-20T08:05:11Z",
			ctBucket("marketing-assets", "us-east-1"), "public_access", "", "true", ctRoot)},
		"s3_put_bucket_acl_grant_header.json": {ctChange("a1b2c3d4-0000-4000-8000-00000000a001", "2026-11-20T08:06:40Z",
			ctBucket("partner-drop", "us-east-1"), "public_access", "", "true", ctDeploy)},
		"s3_put_bucket_policy_public.json": {
			ctChange("5b1a4d2e-8c3f-4a7b-9e6d-2f1c0b9a8e7d", "2026-11-20T08:10:00Z", exportsEU, "public_access", "", "true", ctAlice),
			ctChange("5b1a4d2e-8c3f-4a7b-9e6d-2f1c0b9a8e7d#2", "2026-11-20T08:10:00Z", exportsEU, "shared_with", "", "[]", ctAlice),
		},
		// The org-only statement has a condition; the Analytics one grants
		// another account the bucket: a share.
		"s3_put_bucket_policy_conditional.json": {
			ctChange("6c2b5e3f-9d4a-4b8c-8f7e-3a2d1c0b9f8e", "2026-11-20T10:00:00.250Z", exportsEU, "public_access", "", "false", ctTerraform),
			ctChange("6c2b5e3f-9d4a-4b8c-8f7e-3a2d1c0b9f8e#2", "2026-11-20T10:00:00.250Z", exportsEU, "shared_with", "", `["210987654321"]`, ctTerraform),
		},
		// Two foreign accounts without a condition; the owner's own role,
		// a conditional grant and a service principal are no share.
		"s3_put_bucket_policy_cross_account.json": {
			ctChange("e1000000-0000-4000-8000-000000000004", "2026-11-21T13:00:00Z", exportsEU, "public_access", "", "false", ctAlice),
			ctChange("e1000000-0000-4000-8000-000000000004#2", "2026-11-21T13:00:00Z", exportsEU, "shared_with", "", `["210987654321","444455556666"]`, ctAlice),
		},
		"s3_delete_bucket_policy.json": {
			ctChange("7d3c6f4a-0e5b-4c9d-9a8f-4b3e2d1c0a9f", "2026-11-20T11:00:00Z", exportsEU, "public_access", "", "false", ctAlice),
			ctChange("7d3c6f4a-0e5b-4c9d-9a8f-4b3e2d1c0a9f#2", "2026-11-20T11:00:00Z", exportsEU, "shared_with", "", "[]", ctAlice),
		},
		"s3_put_bucket_public_access_block.json": {ctChange("8e4d7a5b-1f6c-4d0e-8b9a-5c4f3e2d1b0a", "2026-11-20T11:05:00Z",
			exportsEU, "public_access_block", "", "true", ctConfigSvc)},
		"s3_put_public_access_block_partial.json": {ctChange("9f5e8b6c-2a7d-4e1f-9c0b-6d5a4f3e2c1b", "2026-11-20T07:55:00Z",
			exportsEU, "public_access_block", "", "false", ctAlice)},
		"s3_put_public_access_block_account.json": nil, // account-wide: no bucket
		"s3_delete_bucket_public_access_block.json": {ctChange("1b7a0d8e-4c9f-4a3b-9e2d-8f7c6b5a4e3d", "2026-11-20T11:10:00Z",
			exportsEU, "public_access_block", "", "false", ctBob)},
		"s3_delete_bucket_encryption.json": {ctChange("2c8b1e9f-5d0a-4b4c-8f3e-9a8d7c6b5f4e", "2026-11-20T12:00:00Z",
			exportsEU, "encryption_at_rest", "", "false", ctAlice)},
		"s3_put_bucket_encryption.json": {ctChange("3d9c2f0a-6e1b-4c5d-9a4f-0b9e8d7c6a5f", "2026-11-20T12:30:00Z",
			exportsEU, "encryption_at_rest", "", "true", ctAlice)},

		// RDS
		"rds_modify_db_instance_public.json": {ctChange("4e0d3a1b-7f2c-4d6e-8b5a-1c0f9e8d7b6a", "2026-11-20T13:00:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:db:bookings-eu-1", "database", "bookings-eu-1", "eu-central-1"),
			"public_access", "", "true", ctAlice)},
		"rds_create_db_instance_private.json": {ctChange("5f1e4b2c-8a3d-4e7f-9c6b-2d1a0f9e8c7b", "2026-11-20T13:10:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:db:contacts-eu-2", "database", "contacts-eu-2", "eu-central-1"),
			"public_access", "", "false", ctTerraform)},
		"rds_restore_db_instance_from_snapshot.json": {ctChange("6a2f5c3d-9b4e-4f8a-8d7c-3e2b1a0f9d8c", "2026-11-20T13:20:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:db:bookings-restore-test", "database", "bookings-restore-test", "eu-central-1"),
			"public_access", "", "true", ctAlice)},
		"rds_restore_db_instance_to_point_in_time.json": {ctChange("7b3a6d4e-0c5f-4a9b-9e8d-4f3c2b1a0e9d", "2026-11-20T12:30:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:db:bookings-pitr", "database", "bookings-pitr", "eu-central-1"),
			"public_access", "", "false", ctCarol)},
		"rds_modify_db_instance_class_only.json": nil,
		"rds_modify_db_cluster_public.json": {ctChange("4e0d3a1b-7f2c-4d6e-8b5a-1c0f9e8d7b6b", "2026-11-20T13:05:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:cluster:crm-multiaz", "database", "crm-multiaz", "eu-central-1"),
			"public_access", "", "true", ctAlice)},
		"rds_modify_db_snapshot_attribute_public.json": {ctChange("9d5c8f6a-2e7b-4c1d-9a0f-6b5e4d3c2a1f", "2026-11-20T14:00:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:snapshot:bookings-eu-1-2026-11-19", "snapshot", "bookings-eu-1-2026-11-19", "eu-central-1"),
			"shared_with", "", `["all"]`, ctAlice)},
		"rds_modify_db_cluster_snapshot_attribute_remove.json": {ctChange("0e6d9a7b-3f8c-4d2e-8b1a-7c6f5e4d3b2a", "2026-11-20T14:10:00Z",
			ctRes("arn:aws:rds:eu-central-1:123456789012:cluster-snapshot:aurora-crm-2026-11-18", "snapshot", "aurora-crm-2026-11-18", "eu-central-1"),
			"shared_with", `["210987654321","444455556666"]`, `[]`, ctAlice)},

		// Redshift
		"redshift_modify_cluster_public.json": {ctChange("1f7e0b8c-4a9d-4e3f-9c2b-8d7a6f5e4c3b", "2026-11-20T14:30:00Z",
			ctRes("arn:aws:redshift:us-east-1:123456789012:cluster:analytics-dw", "database", "analytics-dw", "us-east-1"),
			"public_access", "", "true", ctAlice)},
		"redshift_create_cluster_private.json": {ctChange("2a8f1c9d-5b0e-4f4a-8d3c-9e8b7a6f5d4c", "2026-11-20T14:40:00Z",
			ctRes("arn:aws:redshift:us-east-1:123456789012:cluster:finance-dw", "database", "finance-dw", "us-east-1"),
			"public_access", "", "false", ctTerraform)},

		// EC2
		"ec2_modify_snapshot_attribute_add.json": {ctChange("3b9a2d0e-6c1f-4a5b-9e4d-0f9c8b7a6e5d", "2026-11-20T15:00:00Z",
			ctRes("arn:aws:ec2:us-east-1:123456789012:snapshot/snap-0abcdef1234567890", "snapshot", "snap-0abcdef1234567890", "us-east-1"),
			"shared_with", "", `["444455556666","all"]`, ctAlice)},
		"ec2_modify_image_attribute_remove.json": {ctChange("4c0b3e1f-7d2a-4b6c-8f5e-1a0d9c8b7f6e", "2026-11-20T15:10:00Z",
			ctRes("arn:aws:ec2:us-east-1::image/ami-0abcdef1234567890", "image", "ami-0abcdef1234567890", "us-east-1"),
			"shared_with", `["all"]`, `[]`, ctAlice)},
		"ec2_authorize_security_group_ingress.json": {
			ctChange("5d1c4f2a-8e3b-4c7d-9a6f-2b1e0d9c8a7f", "2026-11-20T15:20:00Z", sg, "public_ingress", "",
				`{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":5432,"to_port":5432}`, ctTerraform),
			ctChange("5d1c4f2a-8e3b-4c7d-9a6f-2b1e0d9c8a7f#2", "2026-11-20T15:20:00Z", sg, "public_ingress", "",
				`{"cidr":"::/0","protocol":"tcp","from_port":5432,"to_port":5432}`, ctTerraform),
			ctChange("5d1c4f2a-8e3b-4c7d-9a6f-2b1e0d9c8a7f#3", "2026-11-20T15:20:00Z", sg, "public_ingress", "",
				`{"cidr":"0.0.0.0/0","protocol":"all","from_port":0,"to_port":65535}`, ctTerraform),
		},
		"ec2_authorize_security_group_ingress_legacy.json": {ctChange("6e2d5a3b-9f4c-4d8e-8b7a-3c2f1e0d9b8a", "2026-11-20T15:25:00Z",
			ctRes("arn:aws:ec2:us-east-1:123456789012:security-group/legacy-bastion", "firewall", "legacy-bastion", "us-east-1"),
			"public_ingress", "", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":22,"to_port":22}`, ctAlice)},
		"ec2_authorize_security_group_ingress_private.json": nil,
		"ec2_revoke_security_group_ingress.json": {ctChange("8a4f7c5d-1b6e-4f0a-8d9c-5e4b3a2f1d0c", "2026-11-20T16:20:00Z",
			sg, "public_ingress", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":5432,"to_port":5432}`, "null", ctTerraform)},
		"ec2_create_network_acl_entry.json": {ctChange("9b5a8d6e-2c7f-4a1b-9e0d-6f5c4b3a2e1d", "2026-11-20T16:30:00Z",
			acl, "public_ingress", "", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":3389,"to_port":3389}`, ctAlice)},
		"ec2_replace_network_acl_entry_ipv6.json": {ctChange("0c6b9e7f-3d8a-4b2c-8f1e-7a6d5c4b3f2e", "2026-11-20T16:35:00Z",
			acl, "public_ingress", "", `{"cidr":"::/0","protocol":"all","from_port":0,"to_port":65535}`, ctAlice)},
		"ec2_create_network_acl_entry_egress.json": nil,
		// A flow log deleted names no store: detection ties it to the one
		// its creation named.
		"ec2_delete_flow_logs.json": {
			storeDefaulted(ctChange("2e8d1a9b-5f0c-4d4e-8b3a-9c8f7e6d5b4a", "2026-11-20T16:50:00Z",
				ctRes("fl-0a1b2c3d4e5f60001", "log_sink", "fl-0a1b2c3d4e5f60001", "eu-central-1"), "flow_logs", "", "false", ctMallory)),
			storeDefaulted(ctChange("2e8d1a9b-5f0c-4d4e-8b3a-9c8f7e6d5b4a#2", "2026-11-20T16:50:00Z",
				ctRes("fl-0a1b2c3d4e5f60002", "log_sink", "fl-0a1b2c3d4e5f60002", "eu-central-1"), "flow_logs", "", "false", ctMallory)),
		},
		// A flow log created: its id, and the VPC it watches as store.
		"ec2_create_flow_logs.json": {ctChange("3f9e2b0c-6a1d-4e5f-9c4b-0d9a8f7e6c5b", "2026-11-20T17:00:00Z",
			ctRes("fl-0a1b2c3d4e5f60003", "log_sink", "vpc-0a1b2c3d4e5f67890", "eu-central-1"), "flow_logs", "", "true", ctAlice)},
		// Three subnets, one refused (already logged): the two ids pair with
		// the other two, in order.
		"ec2_create_flow_logs_subnets.json": {
			ctChange("e1000000-0000-4000-8000-000000000005", "2026-11-21T13:10:00Z",
				ctRes("fl-0a1b2c3d4e5f60101", "log_sink", "subnet-0a1b2c3d4e5f60001", "eu-central-1"), "flow_logs", "", "true", ctAlice),
			ctChange("e1000000-0000-4000-8000-000000000005#2", "2026-11-21T13:10:00Z",
				ctRes("fl-0a1b2c3d4e5f60103", "log_sink", "subnet-0a1b2c3d4e5f60003", "eu-central-1"), "flow_logs", "", "true", ctAlice),
		},

		// Route 53 Resolver query logging
		"route53resolver_delete_resolver_query_log_config.json": {ctChange("e1000000-0000-4000-8000-000000000001", "2026-11-21T12:00:00Z",
			resolverLog, "audit_logging", "", "false", ctMallory)},
		"route53resolver_disassociate_resolver_query_log_config.json": {ctChange("e1000000-0000-4000-8000-000000000002", "2026-11-21T11:59:30Z",
			resolverLog, "audit_logging", "", "false", ctMallory)},
		"route53resolver_associate_resolver_query_log_config.json": {ctChange("e1000000-0000-4000-8000-000000000003", "2026-11-21T12:20:00Z",
			resolverLog, "audit_logging", "", "true", ctAlice)},

		// CloudTrail
		"cloudtrail_stop_logging.json": {ctChange("4a0f3c1d-7b2e-4f6a-8d5c-1e0b9a8f7d6c", "2026-11-20T17:10:00Z",
			orgAudit, "audit_logging", "", "false", ctMallory)},
		"cloudtrail_start_logging.json": {ctChange("5b1a4d2e-8c3f-4a7b-9e6d-2f1c0b9a8e70", "2026-11-20T17:40:00Z",
			orgAudit, "audit_logging", "", "true", ctAlice)},
		"cloudtrail_delete_trail.json": {ctChange("6c2b5e3f-9d4a-4b8c-8f7e-3a2d1c0b9f81", "2026-11-20T17:45:00Z",
			ctRes("arn:aws:cloudtrail:eu-west-1:123456789012:trail/eu-data-events", "log_sink", "eu-data-events", "eu-west-1"),
			"audit_logging", "", "false", ctRoot)},
		"cloudtrail_update_trail_narrowed.json": {ctChange("7d3c6f4a-0e5b-4c9d-9a8f-4b3e2d1c0a92", "2026-11-20T17:50:00Z",
			orgAudit, "audit_logging_scope", "", `"narrowed"`, ctAlice)},
		"cloudtrail_update_trail_other.json": nil,
		"cloudtrail_put_event_selectors_narrowed.json": {ctChange("9f5e8b6c-2a7d-4e1f-9c0b-6d5a4f3e2c14", "2026-11-20T18:00:00Z",
			orgAudit, "audit_logging_scope", "", `"narrowed"`, ctAlice)},
		"cloudtrail_put_event_selectors_full.json": {ctChange("0a6f9c7d-3b8e-4f2a-8d1c-7e6b5a4f3d25", "2026-11-20T18:10:00Z",
			orgAudit, "audit_logging_scope", "", `"full"`, ctAlice)},
		"cloudtrail_put_event_selectors_advanced.json": {ctChange("1b7a0d8e-4c9f-4a3b-9e2d-8f7c6b5a4e36", "2026-11-20T18:20:00Z",
			orgAudit, "audit_logging_scope", "", `"narrowed"`, ctAlice)},

		// KMS
		"kms_disable_key.json": {ctChange("2c8b1e9f-5d0a-4b4c-8f3e-9a8d7c6b5f47", "2026-11-20T18:30:00Z",
			key, "key_state", "", `"Disabled"`, ctAlice)},
		"kms_schedule_key_deletion.json": {ctChange("3d9c2f0a-6e1b-4c5d-9a4f-0b9e8d7c6a58", "2026-11-20T18:40:00Z",
			key, "key_state", "", `"PendingDeletion"`, ctMallory)},
		"kms_cancel_key_deletion.json": {ctChange("4e0d3a1b-7f2c-4d6e-8b5a-1c0f9e8d7b69", "2026-11-20T18:50:00Z",
			key, "key_state", "", `"Disabled"`, ctAlice)},
		"kms_enable_key.json": {ctChange("5f1e4b2c-8a3d-4e7f-9c6b-2d1a0f9e8c70", "2026-11-20T18:55:00Z",
			key, "key_state", "", `"Enabled"`, ctAlice)},

		// Lambda
		"lambda_add_permission_public.json": {ctChange("6a2f5c3d-9b4e-4f8a-8d7c-3e2b1a0f9d81", "2026-11-20T19:00:00Z",
			fn, "public_access", "", "true", ctAlice)},
		"lambda_add_permission_scoped.json": nil,
		"lambda_create_function_url_config_none.json": {ctChange("8c4b7e5f-1d6a-4b0c-8f9e-5a4d3c2b1fa3", "2026-11-20T19:10:00Z",
			fn, "public_access", "", "true", ctTerraform)},
		"lambda_update_function_url_config_iam.json": {ctChange("9d5c8f6a-2e7b-4c1d-9a0f-6b5e4d3c2ab4", "2026-11-20T19:30:00Z",
			fn, "public_access", "", "false", ctAlice)},

		// Calls that change nothing.
		"failed_put_bucket_acl.json":         nil,
		"irrelevant_get_object.json":         nil,
		"irrelevant_describe_instances.json": nil,

		// A log file: DescribeInstances (nothing), an ingress rule with two
		// public ranges (two changes), a failed DisableKey (nothing), and
		// StopLogging.
		"log_file.json": {
			ctChange("a0000000-0000-4000-8000-000000000002", "2026-11-20T20:00:02Z",
				ctRes("arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0fedcba9876543210", "firewall", "sg-0fedcba9876543210", "eu-central-1"),
				"public_ingress", "", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":443,"to_port":443}`, ctAlice),
			ctChange("a0000000-0000-4000-8000-000000000002#2", "2026-11-20T20:00:02Z",
				ctRes("arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0fedcba9876543210", "firewall", "sg-0fedcba9876543210", "eu-central-1"),
				"public_ingress", "", `{"cidr":"::/0","protocol":"tcp","from_port":443,"to_port":443}`, ctAlice),
			ctChange("a0000000-0000-4000-8000-000000000004", "2026-11-20T20:00:04Z",
				ctRes("arn:aws:cloudtrail:eu-central-1:123456789012:trail/eu-central-audit", "log_sink", "eu-central-audit", "eu-central-1"),
				"audit_logging", "", "false", ctMallory),
		},
		"eventbridge_put_bucket_policy.json": {
			ctChange("b0000000-0000-4000-8000-000000000001", "2026-11-20T20:09:58Z", ctBucket("public-reports", "eu-west-1"), "public_access", "", "true", ctAlice),
			ctChange("b0000000-0000-4000-8000-000000000001#2", "2026-11-20T20:09:58Z", ctBucket("public-reports", "eu-west-1"), "shared_with", "", "[]", ctAlice),
		},

		// 96 records, 101 KiB: more than the per-event limit, taken whole.
		// Among reads and a failed DisableKey: a flow log created and
		// deleted, SSH opened to the world, the bucket shared with another
		// account, and the resolver's query logging deleted.
		"log_file_large.json": {
			ctChange("c1000000-0000-4000-8000-000000000007", "2026-11-21T10:00:29Z",
				ctRes("fl-0b2c3d4e5f6a70011", "log_sink", "vpc-0b2c3d4e5f6a70001", "eu-central-1"), "flow_logs", "", "true", ctAlice),
			ctChange("c1000000-0000-4000-8000-000000000023", "2026-11-21T10:01:41Z",
				ctRes("arn:aws:ec2:eu-central-1:123456789012:security-group/sg-0b2c3d4e5f6a70002", "firewall", "sg-0b2c3d4e5f6a70002", "eu-central-1"),
				"public_ingress", "", `{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":22,"to_port":22}`, ctMallory),
			ctChange("c1000000-0000-4000-8000-000000000041", "2026-11-21T10:03:14Z", exportsEU, "public_access", "", "false", ctMallory),
			ctChange("c1000000-0000-4000-8000-000000000041#2", "2026-11-21T10:03:14Z", exportsEU, "shared_with", "", `["999988887777"]`, ctMallory),
			storeDefaulted(ctChange("c1000000-0000-4000-8000-000000000068", "2026-11-21T10:05:02Z",
				ctRes("fl-0b2c3d4e5f6a70011", "log_sink", "fl-0b2c3d4e5f6a70011", "eu-central-1"), "flow_logs", "", "false", ctMallory)),
			ctChange("c1000000-0000-4000-8000-000000000080", "2026-11-21T10:06:05Z",
				ctRes("arn:aws:route53resolver:eu-central-1:123456789012:resolver-query-log-config/rqlc-0b2c3d4e5f6a7001", "log_sink", "rqlc-0b2c3d4e5f6a7001", "eu-central-1"),
				"audit_logging", "", "false", ctMallory),
		},
		// A detonation log as published: a pretty-printed JSON array. The
		// configuration is created (no change), associated with a VPC,
		// disassociated and deleted.
		"detonation_dns_delete_logs_array.json": {
			ctChange("d1000000-0000-4000-8000-000000000002", "2026-11-21T11:30:05Z", stratusLog, "audit_logging", "", "true", ctRedTeam),
			ctChange("d1000000-0000-4000-8000-000000000003", "2026-11-21T11:31:40Z", stratusLog, "audit_logging", "", "false", ctRedTeam),
			ctChange("d1000000-0000-4000-8000-000000000004", "2026-11-21T11:31:52Z", stratusLog, "audit_logging", "", "false", ctRedTeam),
		},
		// An array of an EventBridge event (RDP opened) and a record (closed).
		"array_eventbridge_and_record.json": {
			ctChange("e1000000-0000-4000-8000-000000000006", "2026-11-21T14:00:00Z", rdpSG, "public_ingress", "",
				`{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":3389,"to_port":3389}`, ctMallory),
			ctChange("e1000000-0000-4000-8000-000000000007", "2026-11-21T14:05:00Z", rdpSG, "public_ingress",
				`{"cidr":"0.0.0.0/0","protocol":"tcp","from_port":3389,"to_port":3389}`, "null", ctAlice),
		},
	}

	// Every sample is asserted.
	entries, err := os.ReadDir(ctDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := tests[e.Name()]; !ok {
			t.Errorf("sample %s has no expectation", e.Name())
		}
	}

	for name, want := range tests {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			data := ctLoad(t, name)
			got, err := (Decoder{}).ConfigRecord(data, nil)
			if err != nil {
				t.Fatalf("ConfigRecord: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d changes, want %d:\n%s", len(got), len(want), ctDump(got))
			}
			for i := range got {
				g := got[i]
				if err := g.Validate(); err != nil {
					t.Errorf("change %d does not validate: %v", i, err)
				}
				if g.Time.Location() != time.UTC {
					t.Errorf("change %d: time %v not in UTC", i, g.Time)
				}
				ctCheckExtra(t, g.Extra)
				g.Extra = nil
				if !reflect.DeepEqual(g, want[i]) {
					t.Errorf("change %d:\ngot  %s\nwant %s", i, ctDump(got[i:i+1]), ctDump(want[i:i+1]))
				}
			}
		})
	}
}

// ctCheckExtra checks that Extra is {"cloudtrail":{…}} with the call's name
// and source.
func ctCheckExtra(t *testing.T, extra json.RawMessage) {
	t.Helper()
	var x struct {
		CloudTrail map[string]string `json:"cloudtrail"`
	}
	if err := json.Unmarshal(extra, &x); err != nil || len(x.CloudTrail) == 0 {
		t.Errorf("extra %s: want {\"cloudtrail\":{…}} (%v)", extra, err)
		return
	}
	if x.CloudTrail["eventName"] == "" || !strings.HasSuffix(x.CloudTrail["eventSource"], ".amazonaws.com") {
		t.Errorf("extra %s lacks eventName or eventSource", extra)
	}
}

func ctDump(cs []ConfigChange) string {
	var b strings.Builder
	for _, c := range cs {
		b.Write(c.AppendJSON(nil))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestConfigRecordExtra(t *testing.T) {
	got, err := (Decoder{}).ConfigRecord(ctLoad(t, "s3_put_bucket_acl_public_grant.json"), nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d changes, %v", len(got), err)
	}
	want := `{"cloudtrail":{"eventName":"PutBucketAcl","eventSource":"s3.amazonaws.com","sourceIPAddress":"198.51.100.23",` +
		`"userAgent":"[aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/s3api.put-bucket-acl]","recipientAccountId":"123456789012"}}`
	if string(got[0].Extra) != want {
		t.Errorf("extra =\n%s\nwant\n%s", got[0].Extra, want)
	}
	// Absent members are left out.
	rec := `{"eventVersion":"1.09","eventTime":"2026-11-20T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"DeleteBucketPolicy",` +
		`"requestParameters":{"bucketName":"b"},"eventID":"e"}`
	got, err = (Decoder{}).ConfigRecord([]byte(rec), nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("got %d changes, %v", len(got), err)
	}
	if want := `{"cloudtrail":{"eventName":"DeleteBucketPolicy","eventSource":"s3.amazonaws.com"}}`; string(got[0].Extra) != want {
		t.Errorf("extra = %s, want %s", got[0].Extra, want)
	}
	if a := got[0].Actor; a == nil || !reflect.DeepEqual(*a, Actor{ID: "unknown", Type: ActorService}) {
		t.Errorf("actor without userIdentity = %+v", a)
	}
	if got[0].Resource.Region != "" {
		t.Errorf("region = %q without awsRegion", got[0].Resource.Region)
	}
}

func TestCloudTrailActor(t *testing.T) {
	tests := []struct {
		in         *ctIdentity
		id, typ    string
		blameField string
	}{
		{nil, "unknown", ActorService, "userIdentity"},
		{&ctIdentity{Type: "Root", ARN: "arn:aws:iam::1:root", PrincipalID: "1"}, "arn:aws:iam::1:root", ActorEmployee, "userIdentity.arn"},
		{&ctIdentity{Type: "IAMUser", ARN: "arn:aws:iam::1:user/a"}, "arn:aws:iam::1:user/a", ActorEmployee, "userIdentity.arn"},
		{&ctIdentity{Type: "FederatedUser", PrincipalID: "1:bob"}, "1:bob", ActorEmployee, "userIdentity.principalId"},
		{&ctIdentity{Type: "IdentityCenterUser"}, "unknown", ActorEmployee, "userIdentity"},
		{&ctIdentity{Type: "AssumedRole", ARN: "arn:aws:sts::1:assumed-role/r/s", InvokedBy: "x"}, "arn:aws:sts::1:assumed-role/r/s", ActorService, "userIdentity.arn"},
		{&ctIdentity{Type: "AWSService", InvokedBy: "config.amazonaws.com"}, "config.amazonaws.com", ActorService, "userIdentity.invokedBy"},
		{&ctIdentity{Type: "WebIdentityUser", PrincipalID: "accounts.google.com:1"}, "accounts.google.com:1", ActorService, "userIdentity.principalId"},
		{&ctIdentity{Type: "AWSAccount", PrincipalID: "AIDA", AccountID: "2"}, "AIDA", ActorService, "userIdentity.principalId"},
	}
	for _, tt := range tests {
		a, field := ctActor(tt.in)
		if a.ID != tt.id || a.Type != tt.typ || a.Tenant != "" || a.Groups != nil || field != tt.blameField {
			t.Errorf("ctActor(%+v) = %+v, %q; want %s/%s, %q", tt.in, a, field, tt.id, tt.typ, tt.blameField)
		}
	}
}

// ctRec is a minimal CloudTrail record of the call source/name with the
// given requestParameters.
func ctRec(source, name, params string) string {
	return `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/Alice","accountId":"123456789012"},` +
		`"eventTime":"2026-11-20T08:00:00Z","eventSource":"` + source + `","eventName":"` + name + `","awsRegion":"eu-west-1",` +
		`"requestParameters":` + params + `,"responseElements":null,"eventID":"e-1","recipientAccountId":"123456789012"}`
}

// ctSummary renders changes as "id resource.id/store setting before→after".
func ctSummary(cs []ConfigChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID+" "+c.Resource.ID+"/"+c.Resource.Store+" "+c.Setting+" "+string(c.Before)+"→"+string(c.After))
	}
	return out
}

// Variants of the mapping the samples do not show.
func TestConfigRecordMappingVariants(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"acl grant object to AllUsers", ctRec("s3.amazonaws.com", "PutBucketAcl",
			`{"bucketName":"b","AccessControlPolicy":{"AccessControlList":{"Grant":{"Grantee":{"xsi:type":"Group","URI":"http://acs.amazonaws.com/groups/global/AllUsers"},"Permission":"READ"}}}}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →true"}},
		{"acl canned private", ctRec("s3.amazonaws.com", "PutBucketAcl", `{"bucketName":"b","x-amz-acl":"private"}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →false"}},
		{"acl canned authenticated-read as string", ctRec("s3.amazonaws.com", "PutBucketAcl", `{"bucketName":"b","x-amz-acl":"authenticated-read"}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →true"}},
		{"acl write-acp header list", ctRec("s3.amazonaws.com", "PutBucketAcl",
			`{"bucketName":"b","x-amz-grant-write-acp":["id=\"abc\"","uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""]}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →true"}},
		{"policy principal list with star, empty condition", ctRec("s3.amazonaws.com", "PutBucketPolicy",
			`{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root","*"]},"Action":"s3:GetObject","Condition":{}}]}}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →true", "e-1#2 arn:aws:s3:::b/s3://b shared_with →[]"}},
		{"policy principal bare list with star", ctRec("s3.amazonaws.com", "PutBucketPolicy",
			`{"bucketName":"b","bucketPolicy":"{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":[\"*\"],\"Action\":\"s3:*\"}}"}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →true", "e-1#2 arn:aws:s3:::b/s3://b shared_with →[]"}},
		{"policy deny star", ctRec("s3.amazonaws.com", "PutBucketPolicy",
			`{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*"}]}}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →false", "e-1#2 arn:aws:s3:::b/s3://b shared_with →[]"}},
		{"policy granting accounts by id and by ARN, owner and deny left out", ctRec("s3.amazonaws.com", "PutBucketPolicy",
			`{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"s3:GetObject"},`+
				`{"Effect":"Allow","Principal":{"AWS":["arn:aws:sts::111122223333:assumed-role/r/s","arn:aws:iam::123456789012:root","arn:aws:iam::999988887777:user/u"]},"Action":"s3:*"},`+
				`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::555555555555:root"},"Action":"s3:*"},`+
				`{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"Action":"s3:PutObject"}]}}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →false", `e-1#2 arn:aws:s3:::b/s3://b shared_with →["111122223333","999988887777"]`}},
		{"policy granting an account in another partition form", ctRec("s3.amazonaws.com", "PutBucketPolicy",
			`{"bucketName":"b","bucketPolicy":{"Statement":{"Effect":"Allow","Principal":"arn:aws-us-gov:iam::222233334444:root","Action":"s3:GetObject"}}}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access →false", `e-1#2 arn:aws:s3:::b/s3://b shared_with →["222233334444"]`}},
		{"public access block without configuration", ctRec("s3.amazonaws.com", "PutBucketPublicAccessBlock", `{"bucketName":"b"}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access_block →false"}},
		{"DeletePublicAccessBlock on a bucket", ctRec("s3.amazonaws.com", "DeletePublicAccessBlock", `{"bucketName":"b"}`),
			[]string{"e-1 arn:aws:s3:::b/s3://b public_access_block →false"}},
		{"DeletePublicAccessBlock on the account", ctRec("s3.amazonaws.com", "DeletePublicAccessBlock", `{"Host":"s3-control"}`), nil},
		{"PutPublicAccessBlock from s3control is not s3", ctRec("s3control.amazonaws.com", "PutPublicAccessBlock", `{"bucketName":"b"}`), nil},
		{"rds snapshot by arn", ctRec("rds.amazonaws.com", "ModifyDBSnapshotAttribute",
			`{"dBSnapshotIdentifier":"arn:aws:rds:eu-west-1:123456789012:snapshot:s1","attributeName":"restore","valuesToAdd":["222233334444","111122223333","111122223333"]}`),
			[]string{`e-1 arn:aws:rds:eu-west-1:123456789012:snapshot:s1/s1 shared_with →["111122223333","222233334444"]`}},
		{"rds snapshot other attribute", ctRec("rds.amazonaws.com", "ModifyDBSnapshotAttribute",
			`{"dBSnapshotIdentifier":"s1","attributeName":"copy","valuesToAdd":["all"]}`), nil},
		{"rds snapshot nothing added or removed", ctRec("rds.amazonaws.com", "ModifyDBSnapshotAttribute",
			`{"dBSnapshotIdentifier":"s1","attributeName":"restore","valuesToAdd":[]}`), nil},
		{"rds publiclyAccessible as string", ctRec("rds.amazonaws.com", "ModifyDBInstance",
			`{"dBInstanceIdentifier":"db1","publiclyAccessible":"true"}`),
			[]string{"e-1 arn:aws:rds:eu-west-1:123456789012:db:db1/db1 public_access →true"}},
		{"image shared with an organization", ctRec("ec2.amazonaws.com", "ModifyImageAttribute",
			`{"imageId":"ami-1","launchPermission":{"add":{"items":[{"organizationArn":"arn:aws:organizations::123456789012:organization/o-abc"}]}}}`),
			[]string{`e-1 arn:aws:ec2:eu-west-1::image/ami-1/ami-1 shared_with →["arn:aws:organizations::123456789012:organization/o-abc"]`}},
		{"snapshot permission without items", ctRec("ec2.amazonaws.com", "ModifySnapshotAttribute",
			`{"snapshotId":"snap-1","createVolumePermission":{"add":{}},"attributeType":"CREATE_VOLUME_PERMISSION"}`), nil},
		{"revoke legacy shape", ctRec("ec2.amazonaws.com", "RevokeSecurityGroupIngress",
			`{"groupId":"sg-1","ipProtocol":"6","fromPort":"3306","toPort":3306,"cidrIp":"0.0.0.0/0"}`),
			[]string{`e-1 arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1/sg-1 public_ingress {"cidr":"0.0.0.0/0","protocol":"tcp","from_port":3306,"to_port":3306}→null`}},
		{"ingress without ports", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
			`{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"udp","ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}`),
			[]string{`e-1 arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1/sg-1 public_ingress →{"cidr":"0.0.0.0/0","protocol":"udp","from_port":0,"to_port":65535}`}},
		{"ingress by rule ids", ctRec("ec2.amazonaws.com", "RevokeSecurityGroupIngress",
			`{"groupId":"sg-1","securityGroupRuleIds":{"items":[{"securityGroupRuleId":"sgr-1"}]}}`), nil},
		{"nacl deny", ctRec("ec2.amazonaws.com", "CreateNetworkAclEntry",
			`{"networkAclId":"acl-1","egress":false,"ruleAction":"deny","aclProtocol":"-1","cidrBlock":"0.0.0.0/0"}`), nil},
		{"nacl udp private", ctRec("ec2.amazonaws.com", "CreateNetworkAclEntry",
			`{"networkAclId":"acl-1","egress":false,"ruleAction":"allow","aclProtocol":"17","cidrBlock":"10.0.0.0/8","portRange":{"from":53,"to":53}}`), nil},
		{"nacl udp public", ctRec("ec2.amazonaws.com", "ReplaceNetworkAclEntry",
			`{"networkAclId":"acl-1","egress":false,"ruleAction":"allow","aclProtocol":"17","cidrBlock":"0.0.0.0/0","portRange":{"from":53,"to":53}}`),
			[]string{`e-1 arn:aws:ec2:eu-west-1:123456789012:network-acl/acl-1/acl-1 public_ingress →{"cidr":"0.0.0.0/0","protocol":"udp","from_port":53,"to_port":53}`}},
		{"flow logs as flowLogIds", ctRec("ec2.amazonaws.com", "DeleteFlowLogs", `{"flowLogIds":["fl-1","fl-2","fl-1"]}`),
			[]string{"e-1 fl-1/fl-1 flow_logs →false", "e-1#2 fl-2/fl-2 flow_logs →false"}},
		{"one flow log as content", ctRec("ec2.amazonaws.com", "DeleteFlowLogs", `{"DeleteFlowLogsRequest":{"FlowLogId":{"content":"fl-9","tag":1}}}`),
			[]string{"e-1 fl-9/fl-9 flow_logs →false"}},
		{"flow logs created for several resources, no ids in the response", ctRec("ec2.amazonaws.com", "CreateFlowLogs",
			`{"CreateFlowLogsRequest":{"ResourceId":[{"content":"subnet-1","tag":1},{"content":"subnet-2","tag":2}],"TrafficType":"ALL"}}`),
			[]string{"e-1 subnet-1/subnet-1 flow_logs →true", "e-1#2 subnet-2/subnet-2 flow_logs →true"}},
		{"flow logs created, ids paired in order", strings.Replace(ctRec("ec2.amazonaws.com", "CreateFlowLogs",
			`{"CreateFlowLogsRequest":{"ResourceId":[{"content":"eni-1","tag":1},{"content":"eni-2","tag":2}]}}`),
			`"responseElements":null`, `"responseElements":{"CreateFlowLogsResponse":{"flowLogIdSet":{"item":["fl-a","fl-b"]},"unsuccessful":""}}`, 1),
			[]string{"e-1 fl-a/eni-1 flow_logs →true", "e-1#2 fl-b/eni-2 flow_logs →true"}},
		{"flow logs created, ids that cannot be paired", strings.Replace(ctRec("ec2.amazonaws.com", "CreateFlowLogs",
			`{"resourceIds":["vpc-1","vpc-2"]}`),
			`"responseElements":null`, `"responseElements":{"CreateFlowLogsResponse":{"flowLogIdSet":{"item":"fl-a"}}}`, 1),
			[]string{"e-1 vpc-1/vpc-1 flow_logs →true", "e-1#2 vpc-2/vpc-2 flow_logs →true"}},
		{"flow logs all refused", strings.Replace(ctRec("ec2.amazonaws.com", "CreateFlowLogs",
			`{"resourceIds":"vpc-1"}`),
			`"responseElements":null`, `"responseElements":{"CreateFlowLogsResponse":{"flowLogIdSet":"","unsuccessful":{"item":[{"resourceId":"vpc-1","error":{"code":"x"}}]}}}`, 1),
			nil},
		{"resolver query logging, API spelling", ctRec("route53resolver.amazonaws.com", "DisassociateResolverQueryLogConfig",
			`{"ResolverQueryLogConfigId":"rqlc-1","ResourceId":"vpc-1"}`),
			[]string{"e-1 arn:aws:route53resolver:eu-west-1:123456789012:resolver-query-log-config/rqlc-1/rqlc-1 audit_logging →false"}},
		{"resolver query log config created", ctRec("route53resolver.amazonaws.com", "CreateResolverQueryLogConfig",
			`{"name":"n","destinationArn":"arn:aws:s3:::b"}`), nil},
		{"update trail global events off", ctRec("cloudtrail.amazonaws.com", "UpdateTrail", `{"name":"t","includeGlobalServiceEvents":false}`),
			[]string{`e-1 arn:aws:cloudtrail:eu-west-1:123456789012:trail/t/t audit_logging_scope →"narrowed"`}},
		{"event selectors without management events", ctRec("cloudtrail.amazonaws.com", "PutEventSelectors",
			`{"trailName":"t","eventSelectors":[{"readWriteType":"All","includeManagementEvents":false}]}`),
			[]string{`e-1 arn:aws:cloudtrail:eu-west-1:123456789012:trail/t/t audit_logging_scope →"narrowed"`}},
		{"event selectors excluding kms events", ctRec("cloudtrail.amazonaws.com", "PutEventSelectors",
			`{"trailName":"t","eventSelectors":[{"readWriteType":"All","includeManagementEvents":true,"excludeManagementEventSources":["kms.amazonaws.com"]}]}`),
			[]string{`e-1 arn:aws:cloudtrail:eu-west-1:123456789012:trail/t/t audit_logging_scope →"narrowed"`}},
		{"advanced selectors with all management events", ctRec("cloudtrail.amazonaws.com", "PutEventSelectors",
			`{"trailName":"t","advancedEventSelectors":[{"name":"m","fieldSelectors":[{"field":"eventCategory","equals":["Management"]}]}]}`),
			[]string{`e-1 arn:aws:cloudtrail:eu-west-1:123456789012:trail/t/t audit_logging_scope →"full"`}},
		{"advanced selectors with data events only", ctRec("cloudtrail.amazonaws.com", "PutEventSelectors",
			`{"trailName":"t","advancedEventSelectors":[{"fieldSelectors":[{"field":"eventCategory","equals":["Data"]},{"field":"resources.type","equals":["AWS::S3::Object"]}]}]}`),
			[]string{`e-1 arn:aws:cloudtrail:eu-west-1:123456789012:trail/t/t audit_logging_scope →"narrowed"`}},
		{"kms key without account falls back to caller's", strings.Replace(ctRec("kms.amazonaws.com", "DisableKey", `{"keyId":"k-1"}`),
			`,"recipientAccountId":"123456789012"`, "", 1),
			[]string{`e-1 arn:aws:kms:eu-west-1:123456789012:key/k-1/k-1 key_state →"Disabled"`}},
		{"lambda partial arn", ctRec("lambda.amazonaws.com", "AddPermission20150331", `{"functionName":"123456789012:function:f1","principal":"*","action":"lambda:InvokeFunction"}`),
			[]string{"e-1 arn:aws:lambda:eu-west-1:123456789012:function:f1/f1 public_access →true"}},
		{"lambda qualified name", ctRec("lambda.amazonaws.com", "AddPermission20150331v2", `{"functionName":"f1:PROD","principal":"*"}`),
			[]string{"e-1 arn:aws:lambda:eu-west-1:123456789012:function:f1:PROD/f1 public_access →true"}},
		{"lambda public but org-scoped", ctRec("lambda.amazonaws.com", "AddPermission20150331v2", `{"functionName":"f1","principal":"*","principalOrgID":"o-abc"}`), nil},
		{"lambda url config without auth type", ctRec("lambda.amazonaws.com", "UpdateFunctionUrlConfig20211031", `{"functionName":"f1","cors":{}}`), nil},
		{"redshift modify without publiclyAccessible", ctRec("redshift.amazonaws.com", "ModifyCluster", `{"clusterIdentifier":"c1","nodeType":"ra3.4xlarge"}`), nil},
		{"unknown source", ctRec("iam.amazonaws.com", "PutBucketAcl", `{"bucketName":"b","x-amz-acl":"public-read"}`), nil},
		{"unknown name", ctRec("s3.amazonaws.com", "PutBucketTagging", `{"bucketName":"b"}`), nil},
		{"irrelevant call with bad parameters", ctRec("s3.amazonaws.com", "GetBucketAcl", `{"bucketName":7}`), nil},
		{"empty errorCode is success", strings.Replace(ctRec("kms.amazonaws.com", "EnableKey", `{"keyId":"k-1"}`), `"eventID"`, `"errorCode":"","eventID"`, 1),
			[]string{`e-1 arn:aws:kms:eu-west-1:123456789012:key/k-1/k-1 key_state →"Enabled"`}},
		{"empty log file", `{"Records":[]}`, nil},
		{"eventbridge console sign-in", `{"detail-type":"AWS Console Sign In via CloudTrail","detail":` +
			ctRec("signin.amazonaws.com", "ConsoleLogin", `null`) + `}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (Decoder{}).ConfigRecord([]byte(tt.in), nil)
			if err != nil {
				t.Fatalf("ConfigRecord: %v", err)
			}
			for _, c := range got {
				if err := c.Validate(); err != nil {
					t.Errorf("invalid change %s: %v", ctDump([]ConfigChange{c}), err)
				}
			}
			if s := ctSummary(got); !slices.Equal(s, tt.want) {
				t.Errorf("got  %q\nwant %q", s, tt.want)
			}
		})
	}
}

func TestConfigRecordErrors(t *testing.T) {
	good := ctRec("s3.amazonaws.com", "DeleteBucketPolicy", `{"bucketName":"b"}`)
	without := func(rec, member string) string {
		i := strings.Index(rec, `"`+member+`"`)
		j := i + strings.IndexAny(rec[i:], ",}")
		if rec[j] == ',' {
			j++
		} else if rec[i-1] == ',' {
			i-- // the last member: drop the comma before it
		}
		return rec[:i] + rec[j:]
	}
	with := func(rec, member, value string) string {
		return strings.Replace(rec, `{"eventVersion"`, `{"`+member+`":`+value+`,"eventVersion"`, 1)
	}
	if got, err := (Decoder{}).ConfigRecord([]byte(good), nil); err != nil || len(got) != 2 {
		t.Fatalf("base record: %d changes, %v", len(got), err)
	}
	long := strings.Repeat("x", MaxIDBytes)
	tests := []struct {
		name, in string
		kind     ErrorKind
		field    string
	}{
		{"bad JSON", `{"eventVersion":"1.09","eventSource":"s3.amazonaws.com",`, KindSyntax, ""},
		{"trailing data", good + `{}`, KindSyntax, ""},
		{"not an object", `"` + good + `"`, KindSyntax, ""},
		{"array not closed", `[` + good, KindSyntax, ""},
		{"array with trailing data", `[` + good + `] x`, KindSyntax, ""},
		{"invalid UTF-8", strings.Replace(good, "Alice", "Al\xffce", 1), KindSyntax, ""},
		{"missing eventTime", without(good, "eventTime"), KindMissing, "eventTime"},
		{"null eventTime", strings.Replace(good, `"2026-11-20T08:00:00Z"`, `null`, 1), KindMissing, "eventTime"},
		{"bad eventTime", strings.Replace(good, `2026-11-20T08:00:00Z`, `2026-11-20 08:00:00`, 1), KindValue, "eventTime"},
		{"eventTime out of range", strings.Replace(good, `2026-11-20T08:00:00Z`, `1969-12-31T23:59:59Z`, 1), KindValue, "eventTime"},
		{"eventTime a number", strings.Replace(good, `"2026-11-20T08:00:00Z"`, `1795680000`, 1), KindType, "eventTime"},
		{"bad eventTime on a failed call", strings.Replace(with(good, "errorCode", `"AccessDenied"`), `2026-11-20T08:00:00Z`, `yesterday`, 1), KindValue, "eventTime"},
		{"eventName a number", strings.Replace(good, `"DeleteBucketPolicy"`, `12`, 1), KindType, "eventName"},
		{"userIdentity a string", strings.Replace(good, `{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/Alice","accountId":"123456789012"}`, `"alice"`, 1), KindType, "userIdentity"},
		{"userIdentity.arn a number", strings.Replace(good, `"arn:aws:iam::123456789012:user/Alice"`, `5`, 1), KindType, "userIdentity.arn"},
		{"missing eventID", without(good, "eventID"), KindMissing, "eventID"},
		{"eventID too long", strings.Replace(good, `"e-1"`, `"`+long+`x"`, 1), KindValue, "eventID"},
		{"actor id too long", strings.Replace(good, `user/Alice`, `user/`+long, 1), KindValue, "userIdentity.arn"},
		{"missing bucketName", ctRec("s3.amazonaws.com", "PutBucketAcl", `{"x-amz-acl":"private"}`), KindMissing, "requestParameters.bucketName"},
		{"bucket name too long", ctRec("s3.amazonaws.com", "PutBucketAcl", `{"bucketName":"`+long+`"}`), KindValue, "requestParameters.bucketName"},
		{"requestParameters a string", ctRec("s3.amazonaws.com", "PutBucketAcl", `"b"`), KindType, "requestParameters"},
		{"grant a string", ctRec("s3.amazonaws.com", "PutBucketAcl", `{"bucketName":"b","AccessControlPolicy":{"AccessControlList":{"Grant":["x"]}}}`),
			KindType, "requestParameters.AccessControlPolicy.AccessControlList.Grant[0]"},
		{"policy not JSON", ctRec("s3.amazonaws.com", "PutBucketPolicy", `{"bucketName":"b","bucketPolicy":"{not json"}`), KindValue, "requestParameters.bucketPolicy"},
		{"policy missing", ctRec("s3.amazonaws.com", "PutBucketPolicy", `{"bucketName":"b"}`), KindMissing, "requestParameters.bucketPolicy"},
		{"policy Effect a number", ctRec("s3.amazonaws.com", "PutBucketPolicy", `{"bucketName":"b","bucketPolicy":{"Statement":[{"Effect":1}]}}`),
			KindType, "requestParameters.bucketPolicy.Statement[0].Effect"},
		{"block flag a number", ctRec("s3.amazonaws.com", "PutBucketPublicAccessBlock", `{"bucketName":"b","PublicAccessBlockConfiguration":{"BlockPublicAcls":1}}`),
			KindType, "requestParameters.PublicAccessBlockConfiguration.BlockPublicAcls"},
		{"publiclyAccessible a number", ctRec("rds.amazonaws.com", "ModifyDBInstance", `{"dBInstanceIdentifier":"db1","publiclyAccessible":1}`),
			KindType, "requestParameters.publiclyAccessible"},
		{"missing dBInstanceIdentifier", ctRec("rds.amazonaws.com", "ModifyDBInstance", `{"publiclyAccessible":true}`),
			KindMissing, "requestParameters.dBInstanceIdentifier"},
		{"missing account", without(strings.Replace(ctRec("rds.amazonaws.com", "ModifyDBInstance", `{"dBInstanceIdentifier":"db1","publiclyAccessible":true}`),
			`,"accountId":"123456789012"`, "", 1), "recipientAccountId"), KindMissing, "recipientAccountId"},
		{"missing region", without(ctRec("redshift.amazonaws.com", "ModifyCluster", `{"clusterIdentifier":"c1","publiclyAccessible":true}`), "awsRegion"),
			KindMissing, "awsRegion"},
		{"valuesToAdd not strings", ctRec("rds.amazonaws.com", "ModifyDBSnapshotAttribute", `{"dBSnapshotIdentifier":"s","attributeName":"restore","valuesToAdd":[1]}`),
			KindType, "requestParameters.valuesToAdd[0]"},
		{"port not a number", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
			`{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":"ssh","toPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}`),
			KindValue, "requestParameters.ipPermissions.items[0].fromPort"},
		{"port a boolean", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
			`{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":true,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}`),
			KindType, "requestParameters.ipPermissions.items[0].toPort"},
		{"missing protocol", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", `{"groupId":"sg-1","cidrIp":"0.0.0.0/0"}`),
			KindMissing, "requestParameters.ipProtocol"},
		{"missing group", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", `{"ipProtocol":"tcp","cidrIp":"0.0.0.0/0"}`),
			KindMissing, "requestParameters.groupId"},
		{"ipRanges a string", ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", `{"groupId":"sg-1","ipPermissions":{"items":[{"ipRanges":"0.0.0.0/0"}]}}`),
			KindType, "requestParameters.ipPermissions.items[0].ipRanges"},
		{"flow logs without ids", ctRec("ec2.amazonaws.com", "DeleteFlowLogs", `{"DeleteFlowLogsRequest":{}}`),
			KindMissing, "requestParameters.DeleteFlowLogsRequest.FlowLogId"},
		{"trail without name", ctRec("cloudtrail.amazonaws.com", "StopLogging", `{}`), KindMissing, "requestParameters.name"},
		{"function without name", ctRec("lambda.amazonaws.com", "AddPermission20150331v2", `{"principal":"*"}`), KindMissing, "requestParameters.functionName"},
		{"responseElements.dBInstanceArn a number", strings.Replace(ctRec("rds.amazonaws.com", "ModifyDBInstance", `{"dBInstanceIdentifier":"db1","publiclyAccessible":true}`),
			`"responseElements":null`, `"responseElements":{"dBInstanceArn":1}`, 1), KindType, "responseElements.dBInstanceArn"},

		{"Records an object", `{"Records":{}}`, KindType, "Records"},
		{"Records a string", `{"Records":"x"}`, KindType, "Records"},
		{"Records null", `{"Records":null}`, KindMissing, "Records"},
		{"Records element not an object", `{"Records":[` + good + `,"x"]}`, KindType, "Records[1]"},
		{"Records element null", `{"Records":[null]}`, KindMissing, "Records[0]"},
		{"Records[3].eventTime", `{"Records":[` + good + `,` + good + `,` + good + `,` +
			strings.Replace(good, `2026-11-20T08:00:00Z`, `2026-13-01T00:00:00Z`, 1) + `]}`, KindValue, "Records[3].eventTime"},
		{"Records[1] parameter", `{"Records":[` + good + `,` + ctRec("s3.amazonaws.com", "PutBucketAcl", `{"bucketName":""}`) + `]}`,
			KindMissing, "Records[1].requestParameters.bucketName"},
		{"Records[0].userIdentity.type", `{"Records":[` + strings.Replace(good, `"IAMUser"`, `[]`, 1) + `]}`, KindType, "Records[0].userIdentity.type"},
		{"Records twice", `{"Records":[],"Records":[]}`, KindValue, "Records"},
		{"Records with a syntax error", `{"Records":[` + good + `,{"eventTime":}]}`, KindSyntax, ""},

		{"array element not an object", `[` + good + `,7]`, KindType, "[1]"},
		{"array element null", `[null]`, KindMissing, "[0]"},
		{"array element a change", `[` + contractConfig + `]`, KindValue, "[0]"},
		{"array element eventTime", `[` + good + `,` + without(good, "eventTime") + `]`, KindMissing, "[1].eventTime"},
		{"array element EventBridge detail-type", `[{"detail-type":"Object Created","detail":{}}]`, KindValue, "[0].detail-type"},
		{"array element EventBridge detail.eventID", `[{"detail-type":"AWS API Call via CloudTrail","detail":` + without(good, "eventID") + `}]`,
			KindMissing, "[0].detail.eventID"},

		{"EventBridge without detail", `{"detail-type":"AWS API Call via CloudTrail","source":"aws.s3"}`, KindMissing, "detail"},
		{"EventBridge detail a string", `{"detail-type":"AWS API Call via CloudTrail","detail":"x"}`, KindType, "detail"},
		{"EventBridge other detail-type", `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"}}}`, KindValue, "detail-type"},
		{"EventBridge detail-type a number", `{"detail-type":1,"detail":{}}`, KindType, "detail-type"},
		{"EventBridge detail.eventTime", `{"detail-type":"AWS API Call via CloudTrail","detail":` + without(good, "eventTime") + `}`, KindMissing, "detail.eventTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sentinel := ConfigChange{ID: "keep"}
			got, err := (Decoder{}).ConfigRecord([]byte(tt.in), []ConfigChange{sentinel})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want an *Error", err, err)
			}
			if e.Kind != tt.kind || e.Field != tt.field {
				t.Errorf("err = %v (kind %s, field %q); want kind %s, field %q", err, e.Kind, e.Field, tt.kind, tt.field)
			}
			if strings.Contains(e.Msg, "mapped to an invalid change") {
				t.Errorf("input error reported as a mapping bug: %v", err)
			}
			if len(got) != 1 || got[0].ID != "keep" {
				t.Errorf("dst changed on error: %s", ctDump(got))
			}
		})
	}
}

func TestConfigRecordTooLarge(t *testing.T) {
	data := ctLoad(t, "log_file.json")
	// A log file is bounded by the file limit, not the per-event one.
	_, err := (Decoder{MaxFileBytes: len(data) - 1, MaxBytes: 1024}).ConfigRecord(data, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTooLarge || !strings.Contains(e.Msg, "ingest.max_file_bytes") {
		t.Fatalf("err = %v, want too_large naming the file limit", err)
	}
	if got, err := (Decoder{MaxFileBytes: len(data), MaxBytes: 2048}).ConfigRecord(data, nil); err != nil || len(got) != 3 {
		t.Fatalf("at the file limit, records within the event limit: %d changes, %v", len(got), err)
	}
	// A single record (or change) keeps the per-event limit, however
	// large the file limit.
	one := ctLoad(t, "ec2_authorize_security_group_ingress.json")
	_, err = (Decoder{MaxBytes: len(one) - 1, MaxFileBytes: 1 << 20}).ConfigRecord(one, nil)
	if !errors.As(err, &e) || e.Kind != KindTooLarge || e.Field != "" || !strings.HasPrefix(e.Msg, "event is ") {
		t.Fatalf("single record over the event limit: err = %v, want too_large", err)
	}
	if got, err := (Decoder{MaxBytes: len(one)}).ConfigRecord(one, nil); err != nil || len(got) != 3 {
		t.Fatalf("single record at the limit: %d changes, %v", len(got), err)
	}
	// The file limit is never below the event limit.
	if got, err := (Decoder{MaxBytes: len(data), MaxFileBytes: 10}).ConfigRecord(data, nil); err != nil || len(got) != 3 {
		t.Fatalf("file limit below the event limit: %d changes, %v", len(got), err)
	}
}

// The real-looking large log file is larger than the default per-event
// limit (as 18 of 55 real files were) and is taken with the defaults.
func TestConfigRecordsLargeLogFile(t *testing.T) {
	data := ctLoad(t, "log_file_large.json")
	if len(data) <= DefaultMaxBytes {
		t.Fatalf("log_file_large.json is %d bytes; it must exceed the per-event limit of %d", len(data), DefaultMaxBytes)
	}
	got, bad, err := (Decoder{}).ConfigRecords(data, nil)
	if err != nil || len(bad) != 0 || len(got) != 6 {
		t.Fatalf("got %d changes, bad %v, err %v", len(got), bad, err)
	}
	// The same file under the old whole-record limit of 64 KiB: refused whole.
	if _, _, err := (Decoder{MaxFileBytes: DefaultMaxBytes}).ConfigRecords(data, nil); err == nil {
		t.Fatal("a 101 KiB file passed a 64 KiB file limit")
	}
}

// A bad record in a log file (or array) is refused alone: the others are
// taken, and each bad one is listed with its index, bytes and error.
func TestConfigRecordsBadRecordsAlone(t *testing.T) {
	good := func(id, bucket string) string {
		return strings.Replace(ctRec("s3.amazonaws.com", "DeleteBucketPolicy", `{"bucketName":"`+bucket+`"}`), `"e-1"`, `"`+id+`"`, 1)
	}
	badTime := strings.Replace(good("e-bad", "b"), "2026-11-20T08:00:00Z", "2026-13-01T00:00:00Z", 1)
	badUTF8 := strings.Replace(good("e-utf", "b"), "Alice", "Al\xffce", 1)
	tooLarge := strings.Replace(good("e-big", "b"), `"eventVersion"`, `"pad":"`+strings.Repeat("x", 3000)+`","eventVersion"`, 1)
	records := []string{good("e-0", "b0"), badTime, good("e-2", "b2"), `"not a record"`, badUTF8, tooLarge, good("e-6", "b6"), `null`}
	wantBad := []struct {
		index int
		kind  ErrorKind
		field string
	}{{1, KindValue, "eventTime"}, {3, KindType, ""}, {4, KindSyntax, ""}, {5, KindTooLarge, ""}, {7, KindMissing, ""}}
	for _, form := range []struct{ name, open, close, prefix string }{
		{"log file", `{"Records":[`, `]}`, "Records"},
		{"array", "[\n  ", "\n]", ""},
	} {
		t.Run(form.name, func(t *testing.T) {
			data := []byte(form.open + strings.Join(records, ",\n  ") + form.close)
			dec := Decoder{MaxBytes: 2048}
			prior := []ConfigChange{{ID: "prior"}}
			got, bad, err := dec.ConfigRecords(data, prior)
			if err != nil {
				t.Fatalf("ConfigRecords: %v", err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if want := []string{"prior", "e-0", "e-0#2", "e-2", "e-2#2", "e-6", "e-6#2"}; !slices.Equal(ids, want) {
				t.Errorf("changes %q, want %q", ids, want)
			}
			if len(bad) != len(wantBad) {
				t.Fatalf("%d bad records, want %d: %+v", len(bad), len(wantBad), bad)
			}
			for i, w := range wantBad {
				b := bad[i]
				field := form.prefix + "[" + strconv.Itoa(w.index) + "]"
				if w.field != "" {
					field += "." + w.field
				}
				if b.Index != w.index || b.Err == nil || b.Err.Kind != w.kind || b.Err.Field != field {
					t.Errorf("bad[%d] = index %d, %v; want index %d, kind %s, field %q", i, b.Index, b.Err, w.index, w.kind, field)
				}
				if string(b.Raw) != records[w.index] {
					t.Errorf("bad[%d].Raw = %.60q, want the record as given", i, b.Raw)
				}
			}
			// All or nothing: the first bad record is the error.
			got2, err := dec.ConfigRecord(data, prior)
			var e *Error
			if !errors.As(err, &e) || e.Field != form.prefix+"[1].eventTime" || len(got2) != 1 {
				t.Errorf("ConfigRecord = %d changes, %v; want the error of record 1 and nothing appended", len(got2), err)
			}
		})
	}
}

func TestConfigRecordsStoreDefaulted(t *testing.T) {
	for in, want := range map[string]bool{
		`{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"fl-1","type":"log_sink"},"setting":"flow_logs","after":false}`:                 true,
		`{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"fl-1","type":"log_sink","store":""},"setting":"flow_logs","after":false}`:      true,
		`{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"fl-1","type":"log_sink","store":"vpc-1"},"setting":"flow_logs","after":false}`: false,
		`{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"fl-1","type":"log_sink","store":"fl-1"},"setting":"flow_logs","after":false}`:  false,
	} {
		got, err := (Decoder{}).ConfigRecord([]byte(in), nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %v", in, err)
		}
		if got[0].StoreDefaulted != want || got[0].Resource.Store == "" {
			t.Errorf("%s: StoreDefaulted = %v (store %q), want %v", in, got[0].StoreDefaulted, got[0].Resource.Store, want)
		}
		// The flag is not on the wire: the store is written as resolved.
		out := got[0].AppendJSON(nil)
		if !strings.Contains(string(out), `"store":"`+got[0].Resource.Store+`"`) || strings.Contains(string(out), "efault") {
			t.Errorf("encoded %s", out)
		}
	}
}

// Plain configuration changes go through ConfigRecord exactly as through
// Decoder.Config.
func TestConfigRecordPlainChange(t *testing.T) {
	inputs := []string{
		contractConfig,
		// Members named like CloudTrail's do not make a change a record.
		`{"id":"c-1","time":"2026-11-20T08:00:00Z","resource":{"id":"r","type":"bucket"},"setting":"s","after":1,"eventName":"x","Records":[],"detail-type":"y"}`,
		// Errors.
		`{"id":"c","time":"2026-11-20T08:00:00Z","resource":{"id":"r","type":"bucket"},"after":true}`,
		`{"id":1}`,
		`{}`,
		`null`,
		`"x"`,
		``,
		`{"id":"c","id":"d"}`,
		`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"eventName":"x"`,
		"{\"id\":\"\xff\"}",
	}
	for _, in := range inputs {
		var want ConfigChange
		wantErr := (Decoder{}).Config([]byte(in), &want)
		prior := []ConfigChange{{ID: "prior"}}
		got, err := (Decoder{}).ConfigRecord([]byte(in), prior)
		if !reflect.DeepEqual(err, wantErr) {
			t.Errorf("%.60s: err = %v, want %v", in, err, wantErr)
			continue
		}
		if wantErr != nil {
			if len(got) != 1 || got[0].ID != "prior" {
				t.Errorf("%.60s: dst changed on error", in)
			}
			continue
		}
		if len(got) != 2 || got[0].ID != "prior" || !reflect.DeepEqual(got[1], want) {
			t.Errorf("%.60s: got %s, want prior + %s", in, ctDump(got), ctDump([]ConfigChange{want}))
		}
	}
}

func FuzzConfigRecord(f *testing.F) {
	entries, err := os.ReadDir(ctDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(ctLoad(f, e.Name()))
	}
	for _, s := range []string{
		contractConfig, `{}`, `{"Records":[]}`, `{"Records":[{}]}`, `{"detail-type":"AWS API Call via CloudTrail","detail":{}}`,
		`[]`, `[{},null,1]`, `[` + contractConfig + `]`, `{"Records":[],"Records":null}`,
		ctRec("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", `{"groupId":"sg-1","ipProtocol":"-1","cidrIpv6":"::/0"}`),
		ctRec("lambda.amazonaws.com", "AddPermission20150331v2", `{"functionName":"arn:aws:lambda:eu-west-1:1:function:f","principal":"*"}`),
		ctRec("s3.amazonaws.com", "PutBucketPolicy", `{"bucketName":"b","bucketPolicy":"{\"Statement\":[]}"}`),
		ctRec("s3.amazonaws.com", "PutBucketPolicy", `{"bucketName":"b","bucketPolicy":{"Statement":{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::1:root"]}}}}`),
		ctRec("ec2.amazonaws.com", "CreateFlowLogs", `{"resourceIds":["vpc-1","vpc-2"]}`),
		ctRec("route53resolver.amazonaws.com", "AssociateResolverQueryLogConfig", `{"resolverQueryLogConfigId":"rqlc-1","resourceId":"vpc-1"}`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		prior := []ConfigChange{{ID: "prior"}}
		got, bad, err := (Decoder{}).ConfigRecords(data, prior)
		if len(got) == 0 || got[0].ID != "prior" {
			t.Fatalf("dst lost its first element")
		}
		var plain ConfigChange
		plainErr := (Decoder{}).Config(data, &plain)
		if plainErr == nil && (err != nil || len(bad) != 0 || len(got) != 2 || !reflect.DeepEqual(got[1], plain)) {
			t.Fatalf("a valid change decoded differently: %v\n%s", err, ctDump(got))
		}
		all, allErr := (Decoder{}).ConfigRecord(data, prior)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if strings.Contains(e.Msg, "mapped to an invalid change") {
				t.Fatalf("mapping bug: %v\n%q", err, data)
			}
			if len(got) != 1 || len(bad) != 0 {
				t.Fatalf("changes appended or records listed despite error %v", err)
			}
			if allErr == nil {
				t.Fatalf("ConfigRecord accepted what ConfigRecords refused: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		// All or nothing: ConfigRecord takes it when no record was bad.
		if (allErr == nil) != (len(bad) == 0) || allErr == nil && len(all) != len(got) || allErr != nil && len(all) != 1 {
			t.Fatalf("ConfigRecord: %d changes, %v; ConfigRecords: %d changes, %d bad", len(all), allErr, len(got), len(bad))
		}
		last := -1
		for _, b := range bad {
			if b.Err == nil || b.Index <= last || len(b.Raw) == 0 || !bytes.Contains(data, b.Raw) {
				t.Fatalf("bad record %+v", b)
			}
			if strings.Contains(b.Err.Msg, "mapped to an invalid change") {
				t.Fatalf("mapping bug: %v\n%q", b.Err, data)
			}
			last = b.Index
		}
		ids := map[string]bool{}
		for _, c := range got[1:] {
			if err := c.Validate(); err != nil {
				t.Fatalf("invalid change %s: %v", ctDump([]ConfigChange{c}), err)
			}
			if !json.Valid(c.After) || c.Before != nil && !json.Valid(c.Before) || c.Extra != nil && !json.Valid(c.Extra) {
				t.Fatalf("change with invalid JSON values: %s", ctDump([]ConfigChange{c}))
			}
			if c.Source == "cloudtrail" {
				if sh := scan(data).shape; ids[c.ID] && sh != shapeLogFile && sh != shapeArray {
					t.Fatalf("two changes with id %q from one record", c.ID)
				}
				ids[c.ID] = true
			}
		}
	})
}
