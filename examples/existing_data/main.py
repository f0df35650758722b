#!/usr/bin/env python
"""An outside project's stack that runs harbor-ha's Harbor fleet and load-balancer pair on a database, a Redis
and a bucket the project already has: each is given by attributes (``HarborDatabase.from_attributes``,
``HarborCache.from_attributes``, ``RegistryStorage.from_attributes``), here Terraform references to data
sources and variables, so nothing of the three is created or changed but an ingress rule on each store's
security group (admitting the Harbor servers) and the Harbor servers' grants to read the two secrets and use the
bucket. The VPC and subnets are the project's too (variables).

Run from this directory: `pipenv run python main.py` (synthesizes into cdktf.out/), or with the cdktf CLI;
`terraform plan` then asks for the variables.
"""

from harbor_ha.aws import (
    App, AwsProvider, DataAwsDbInstance, DataAwsElasticacheReplicationGroup, DataAwsRegion, Fn, TerraformOutput,
    TerraformStack, TerraformVariable, Token,
)
from harbor_ha.constructs import (
    HarborCache, HarborDatabase, HarborFleet, HarborFleetProps, HarborNetwork, HarborNetworkProps,
    LoadBalancerPair, LoadBalancerPairProps, RegistryStorage, StaticIps, StaticIpsProps,
)

NAME = "existing-data"


class ExistingDataStack(TerraformStack):
    def __init__(self, scope, id_: str) -> None:
        super().__init__(scope, id_)
        AwsProvider(self, "aws", region="eu-west-1")

        def variable(name: str, description: str, type_: str = "string") -> TerraformVariable:
            return TerraformVariable(self, name, type=type_, description=description)

        vpc_id = variable("vpc_id", "The VPC of the database and cache")
        public = variable("public_subnet_ids", "Two public subnets (load balancers), AZ i at index i", "list(string)")
        private = variable("private_subnet_ids", "Two private subnets (Harbor servers), AZ i at index i",
                           "list(string)")
        db_identifier = variable("db_identifier", "Identifier of the RDS PostgreSQL instance Harbor uses")
        db_group = variable("db_security_group_id", "Security group that admits the database's clients")
        redis_group_id = variable("redis_replication_group_id", "The ElastiCache replication group Harbor uses")
        redis_group = variable("redis_security_group_id", "Security group that admits the Redis clients")
        redis_token = variable("redis_auth_token_secret_arn", "Secrets Manager secret holding the Redis AUTH token")
        bucket = variable("bucket_name", "The S3 bucket for the images (SSE-KMS)")
        bucket_key = variable("bucket_kms_key_arn", "The KMS key that bucket encrypts with")

        def subnets(names: TerraformVariable) -> tuple[str, ...]:
            return tuple(Token.as_string(Fn.element(names.list_value, i)) for i in range(2))

        network = HarborNetwork(self, "network", props=HarborNetworkProps(
            name=NAME, vpc_id=vpc_id.string_value, public_subnet_ids=subnets(public),
            private_subnet_ids=subnets(private)))

        # The project's stores, looked up or given: harbor-ha only reads their attributes.
        db = DataAwsDbInstance(self, "db", db_instance_identifier=db_identifier.string_value)
        database = HarborDatabase.from_attributes(
            self, "database", db_address=db.address, master_user_secret_arn=db.master_user_secret.get(0).secret_arn,
            secret_kms_key_arn=db.master_user_secret.get(0).kms_key_id, security_group_id=db_group.string_value,
            resource_id=db.resource_id)
        redis = DataAwsElasticacheReplicationGroup(self, "redis",
                                                   replication_group_id=redis_group_id.string_value)
        cache = HarborCache.from_attributes(
            self, "cache", redis_endpoint=redis.primary_endpoint_address,
            auth_token_secret_arn=redis_token.string_value, security_group_id=redis_group.string_value)
        storage = RegistryStorage.from_attributes(
            self, "storage", bucket_name=bucket.string_value, region=DataAwsRegion(self, "region").name,
            kms_key_arn=bucket_key.string_value)

        ips = StaticIps(self, "ips", props=StaticIpsProps(network=network, name=NAME, harbor_count=2))
        fleet = HarborFleet(self, "harbor", props=HarborFleetProps(
            network=network, storage=storage, database=database, cache=cache, name=NAME, count=2,
            addresses=ips.harbor_addresses, hostname="registry.example.com"))
        LoadBalancerPair(self, "lb", props=LoadBalancerPairProps(
            network=network, static_ips=ips, targets=fleet, name=f"{NAME}-lb"))
        TerraformOutput(self, "vip", value=ips.vip_address)


if __name__ == "__main__":
    app = App()
    ExistingDataStack(app, "existing-data")
    app.synth()
