"""Each gap of moto that harbor_ha.local.moto_gaps closes: the call works against the patched emulator."""

from __future__ import annotations

import json

import pytest

from harbor_ha.local import emulator
from harbor_ha.local.moto_gaps import PATCHES

from e2e_helpers import client


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with emulator.running(tmp_path_factory.mktemp("moto-gaps")) as running:
        yield running.endpoint


def test_every_patch_is_documented():
    for patch in PATCHES:
        assert patch.__doc__ and len(patch.__doc__) > 60, patch.__name__


def _replication_group(endpoint: str, group_id: str) -> dict:
    elasticache = client(endpoint, "elasticache")
    return elasticache.create_replication_group(
        ReplicationGroupId=group_id, ReplicationGroupDescription="test", Engine="redis", EngineVersion="7.1",
        CacheNodeType="cache.t4g.medium", NumNodeGroups=1, ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=True, MultiAZEnabled=True, PreferredCacheClusterAZs=["us-east-1a", "us-east-1b"],
        TransitEncryptionEnabled=True, AtRestEncryptionEnabled=True, SecurityGroupIds=["sg-12345678"])["ReplicationGroup"]


def test_register_replication_group_member_clusters(endpoint):
    group = _replication_group(endpoint, "members")
    assert group["MemberClusters"] == ["members-001", "members-002"]
    elasticache = client(endpoint, "elasticache")
    for member in group["MemberClusters"]:
        cluster = elasticache.describe_cache_clusters(CacheClusterId=member)["CacheClusters"][0]
        assert cluster["ReplicationGroupId"] == "members"
        assert cluster["Engine"] == "redis"
        assert cluster["CacheNodeType"] == "cache.t4g.medium"
        assert cluster["AtRestEncryptionEnabled"] and cluster["TransitEncryptionEnabled"]
        assert [g["SecurityGroupId"] for g in cluster["SecurityGroups"]] == ["sg-12345678"]


def test_finish_replication_group_deletes(endpoint):
    _replication_group(endpoint, "deleted")
    elasticache = client(endpoint, "elasticache")
    elasticache.delete_replication_group(ReplicationGroupId="deleted")
    with pytest.raises(elasticache.exceptions.ReplicationGroupNotFoundFault):
        elasticache.describe_replication_groups(ReplicationGroupId="deleted")
    with pytest.raises(elasticache.exceptions.CacheClusterNotFoundFault):
        elasticache.describe_cache_clusters(CacheClusterId="deleted-001")


def test_implement_monitor_instances(endpoint):
    ec2 = client(endpoint, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    answer = ec2.monitor_instances(InstanceIds=[instance])["InstanceMonitorings"]
    assert answer == [{"InstanceId": instance, "Monitoring": {"State": "enabled"}}]
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert described["Monitoring"]["State"] == "enabled"
    ec2.unmonitor_instances(InstanceIds=[instance])
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert described["Monitoring"]["State"] == "disabled"


def test_report_security_groups_of_interface_launches(endpoint):
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fixed-ip", Description="test", VpcId=vpc)["GroupId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, NetworkInterfaces=[{
        "DeviceIndex": 0, "SubnetId": subnet, "PrivateIpAddress": "10.8.1.10", "Groups": [group]}])["Instances"][0]
    described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in described["SecurityGroups"]] == [group]


def test_release_private_ips_of_terminated_instances(endpoint):
    """A replacement (terminate, then launch) at the same fixed address, as a rolling upgrade does."""
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    spec = dict(ImageId=image, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": subnet, "PrivateIpAddress": "10.9.1.10"}])
    first = ec2.run_instances(**spec)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[first])
    second = ec2.run_instances(**spec)["Instances"][0]
    assert second["PrivateIpAddress"] == "10.9.1.10" and second["InstanceId"] != first


def test_accept_portless_protocol_rules(endpoint):
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="vrrp", Description="test", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "112", "IpRanges": [{"CidrIp": "10.7.1.10/32"}]}])
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[{
        "IpProtocol": "112", "IpRanges": [{"CidrIp": "10.7.1.10/32"}]}])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert {(r["IsEgress"], r["IpProtocol"]) for r in rules if r["IpProtocol"] == "112"} == {(False, "112"), (True, "112")}


def test_load_aws_managed_policies(endpoint):
    iam = client(endpoint, "iam")
    iam.create_role(RoleName="node", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName="node", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    attached = iam.list_attached_role_policies(RoleName="node")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]


def test_mark_db_parameters_user_modified(endpoint):
    rds = client(endpoint, "rds")
    rds.create_db_parameter_group(DBParameterGroupName="tls", DBParameterGroupFamily="postgres16", Description="t")
    rds.modify_db_parameter_group(DBParameterGroupName="tls", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    user = rds.describe_db_parameters(DBParameterGroupName="tls", Source="user")["Parameters"]
    assert [(p["ParameterName"], p["Source"]) for p in user] == [("rds.force_ssl", "user")]
    assert rds.describe_db_parameters(DBParameterGroupName="tls", Source="system")["Parameters"] == []


def test_keep_rule_descriptions(endpoint):
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    target = ec2.create_security_group(GroupName="target", Description="t", VpcId=vpc)["GroupId"]
    source = ec2.create_security_group(GroupName="source", Description="s", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=target, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "UserIdGroupPairs": [{"GroupId": source, "Description": "Harbor clients"}]}])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [target]}])["SecurityGroupRules"]
    assert [r.get("Description") for r in rules if not r["IsEgress"]] == ["Harbor clients"]


def test_implement_delete_cache_subnet_group(endpoint):
    ec2, elasticache = client(endpoint, "ec2"), client(endpoint, "elasticache")
    vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.5.1.0/24")["Subnet"]["SubnetId"]
    elasticache.create_cache_subnet_group(CacheSubnetGroupName="gone", CacheSubnetGroupDescription="t",
                                          SubnetIds=[subnet])
    elasticache.delete_cache_subnet_group(CacheSubnetGroupName="gone")
    with pytest.raises(elasticache.exceptions.CacheSubnetGroupNotFoundFault):
        elasticache.describe_cache_subnet_groups(CacheSubnetGroupName="gone")


def test_honour_secure_transport_condition(endpoint):
    import json

    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::tls-only/*"}]}))
    s3.put_object(Bucket="tls-only", Key="configurator.py", Body=b"print('hello')")
    assert s3.head_object(Bucket="tls-only", Key="configurator.py")["ContentLength"] == 14
    assert s3.get_object(Bucket="tls-only", Key="configurator.py")["Body"].read() == b"print('hello')"
    # Other statements of the policy still count.
    with pytest.raises(s3.exceptions.ClientError, match="403|AccessDenied|Forbidden"):
        s3.delete_object(Bucket="tls-only", Key="configurator.py")


def _subnets(endpoint: str, cidr: str) -> list[str]:
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    return [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")
            ["Subnet"]["SubnetId"] for i, zone in enumerate("ab")]


def test_give_db_instances_unique_resource_ids(endpoint):
    rds = client(endpoint, "rds")
    ids = [rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.m6g.large",
                                  AllocatedStorage=20, MasterUsername="harbor", MasterUserPassword="password1")
           ["DBInstance"]["DbiResourceId"] for name in ("first", "second")]
    assert ids[0] != ids[1] and all(len(i) == 29 and i.startswith("db-") for i in ids)
    assert rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [ids[1]]}])[
        "DBInstances"][0]["DBInstanceIdentifier"] == "second"


def test_refuse_duplicate_db_subnet_groups(endpoint):
    rds = client(endpoint, "rds")
    first, second = _subnets(endpoint, "10.61.0.0/16"), _subnets(endpoint, "10.62.0.0/16")
    rds.create_db_subnet_group(DBSubnetGroupName="taken", DBSubnetGroupDescription="first", SubnetIds=first)
    with pytest.raises(rds.exceptions.DBSubnetGroupAlreadyExistsFault):
        rds.create_db_subnet_group(DBSubnetGroupName="taken", DBSubnetGroupDescription="second", SubnetIds=second)
    group = rds.describe_db_subnet_groups(DBSubnetGroupName="taken")["DBSubnetGroups"][0]
    assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(first)


def test_duplicate_cache_subnet_groups_are_refused(endpoint):
    """moto already refuses this as AWS does (no patch): shown so that a moto upgrade that stops is noticed."""
    elasticache = client(endpoint, "elasticache")
    first, second = _subnets(endpoint, "10.63.0.0/16"), _subnets(endpoint, "10.64.0.0/16")
    elasticache.create_cache_subnet_group(CacheSubnetGroupName="taken", CacheSubnetGroupDescription="first",
                                          SubnetIds=first)
    with pytest.raises(elasticache.exceptions.CacheSubnetGroupAlreadyExistsFault):
        elasticache.create_cache_subnet_group(CacheSubnetGroupName="taken", CacheSubnetGroupDescription="second",
                                              SubnetIds=second)


def test_keep_performance_insights(endpoint):
    rds = client(endpoint, "rds")
    rds.create_db_instance(DBInstanceIdentifier="insights", DBInstanceClass="db.m6g.large", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="harbor", MasterUserPassword="not-a-real-one-1",
                           EnablePerformanceInsights=True, PerformanceInsightsRetentionPeriod=7,
                           PerformanceInsightsKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/insights")
    described = rds.describe_db_instances(DBInstanceIdentifier="insights")["DBInstances"][0]
    assert (described["PerformanceInsightsEnabled"], described["PerformanceInsightsRetentionPeriod"]) == (True, 7)
    assert described["PerformanceInsightsKMSKeyId"].endswith("key/insights")
    rds.modify_db_instance(DBInstanceIdentifier="insights", EnablePerformanceInsights=False, ApplyImmediately=True)
    described = rds.describe_db_instances(DBInstanceIdentifier="insights")["DBInstances"][0]
    assert described["PerformanceInsightsEnabled"] is False


def test_accept_query_log_group_arn(endpoint):
    logs, route53 = client(endpoint, "logs"), client(endpoint, "route53")
    logs.create_log_group(logGroupName="/aws/route53/gap.example")
    zone = route53.create_hosted_zone(Name="gap.example", CallerReference="gap")["HostedZone"]["Id"].split("/")[-1]
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/route53/gap.example"
    config = route53.create_query_logging_config(HostedZoneId=zone, CloudWatchLogsLogGroupArn=arn)
    assert (config["QueryLoggingConfig"]["HostedZoneId"], config["QueryLoggingConfig"]["CloudWatchLogsLogGroupArn"]) \
        == (zone, arn)


def test_read_logging_target_policies_with_any_principal(endpoint):
    s3 = client(endpoint, "s3")
    for bucket in ("access-logs", "logged"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket="access-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::access-logs/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::access-logs/*"}]}))
    s3.put_bucket_logging(Bucket="logged", BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": "access-logs", "TargetPrefix": "s3/logged/"}})
    assert s3.get_bucket_logging(Bucket="logged")["LoggingEnabled"]["TargetBucket"] == "access-logs"
