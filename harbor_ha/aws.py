"""Every cdktf and AWS-provider import of harbor-ha, in one place.

``import cdktf_cdktf_provider_aws.<anything>`` normally runs the package root ``__init__``, which imports all
~2,135 resource modules (about 10 s and 1 GB before a single construct exists). The root holds nothing
but those imports: each resource module loads the jsii assembly itself (``from .._jsii import *``). So we
register the bare package (its spec, never executed) in ``sys.modules`` first; importing a submodule then
loads that submodule alone. The synthesized JSON is byte-identical to the eager import's
(tests/test_fast_provider_import.py), and a move to another binding package is an edit of this file.

The jsii node process has the same eager root on its side: the package's ``lib/index.js`` requires every
resource module's JavaScript (about 250 MB). ``harbor_ha/node/lazy_provider_index.js``, loaded into jsii's
node processes through ``NODE_OPTIONS=--require``, answers that require with getters that load a module when
the kernel first reaches a type in it.

Set ``HARBOR_HA_EAGER_PROVIDER=1`` to import the package the ordinary way on both sides (the benchmark's
baseline).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import types
import warnings

PROVIDER_PACKAGE = "cdktf_cdktf_provider_aws"
PROVIDER_VERSION = "5.100.0"


# jsii prints a banner on every start that Node 20 is past its end of life; the pinned toolchain runs on it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# The jsii node processes hold most of a synth's memory (benchmarks/synth_benchmark.py measures them): a 1 MB
# young generation (default 16 MB) trims their peak by about 30 MB, and V8's interpreter alone (the options of
# harbor_ha/node/jsii-node) by about 12 MB more, and a synth's time as well. What the user set is left alone.
JSII_NODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "jsii-node")
os.environ.setdefault("JSII_NODE", JSII_NODE)
if "--max-semi-space-size" not in os.environ.get("NODE_OPTIONS", ""):
    os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} --max-semi-space-size=1".strip()


LAZY_NODE_INDEX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "lazy_provider_index.js")
EAGER = os.environ.get("HARBOR_HA_EAGER_PROVIDER") == "1"


def _preload_lazy_node_index() -> None:
    """Have jsii's node processes (started by the first cdktf import below) load the provider lazily, or,
    in the eager mode, not (even when a parent process in the fast mode passed the option on)."""
    preload = f'--require "{LAZY_NODE_INDEX}"'
    options = os.environ.get("NODE_OPTIONS", "").replace(preload, "").strip()
    os.environ["NODE_OPTIONS"] = options if EAGER else f"{options} {preload}".strip()


class SlowProviderImport(UserWarning):
    """The AWS provider (or cdktf) was imported before harbor_ha: synth runs at the eager import's speed."""


def _warn_of_an_earlier_import() -> None:
    """An import of the provider package before harbor_ha ran its root (every resource module), and an import
    of cdktf started jsii's node process without the lazy index: neither can be undone, so say it once."""
    if EAGER or getattr(sys.modules.get(PROVIDER_PACKAGE), "harbor_ha_bare", False):
        return
    first = PROVIDER_PACKAGE if PROVIDER_PACKAGE in sys.modules else "cdktf" if "cdktf" in sys.modules else None
    if first:
        warnings.warn(f"{first} was imported before harbor_ha, so this synth loads every AWS provider module "
                      "(about 10 s and 600 MB instead of 1 s and 150 MB): import harbor_ha (or the classes you "
                      "need from harbor_ha.aws) before cdktf and cdktf_cdktf_provider_aws",
                      SlowProviderImport, stacklevel=3)


def _register_bare_provider_package() -> None:
    if PROVIDER_PACKAGE in sys.modules:
        return
    if EAGER:
        importlib.import_module(PROVIDER_PACKAGE)
        return
    spec = importlib.util.find_spec(PROVIDER_PACKAGE)
    if spec is None:
        raise ImportError(f"{PROVIDER_PACKAGE} is not installed: run 'pipenv install' in the harbor-ha project")
    bare = importlib.util.module_from_spec(spec)
    bare.harbor_ha_bare = True
    sys.modules[PROVIDER_PACKAGE] = bare


def _node_process_in_a_session_of_its_own() -> None:
    """A terminal's Ctrl-C signals the whole foreground process group. jsii's node process, started in it, died
    of it, and jsii then printed a traceback (the pipe to the dead process) and the node runtime's own channel
    error after harbor-ha's one-line message. In a session of its own it hears only harbor-ha, which stops it
    at exit as jsii always does (and it exits by itself when harbor-ha's end of its stdin closes). Patched
    before jsii starts a node process."""
    from jsii._kernel.providers import process

    if getattr(process.subprocess, "own_session", False):
        return
    real = process.subprocess
    process.subprocess = types.SimpleNamespace(
        Popen=functools.partial(real.Popen, start_new_session=True), PIPE=real.PIPE,
        TimeoutExpired=real.TimeoutExpired, own_session=True)


_warn_of_an_earlier_import()
_preload_lazy_node_index()
_node_process_in_a_session_of_its_own()
_register_bare_provider_package()

# isort: off  (the bare package must be registered before these imports)
from cdktf import (  # noqa: E402
    App, Aspects, Fn, IAspect, LocalBackend, TerraformDataSource, TerraformOutput, TerraformResource,
    TerraformResourceLifecycle, TerraformStack, TerraformVariable, Testing, Token,
)
from constructs import Construct  # noqa: E402
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags, AwsProviderEndpoints  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_availability_zones import DataAwsAvailabilityZones  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (  # noqa: E402
    DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition, DataAwsIamPolicyDocumentStatementPrincipals,
)
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_region import DataAwsRegion  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_secretsmanager_secret_version import (  # noqa: E402
    DataAwsSecretsmanagerSecretVersion,
)
from cdktf_cdktf_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter  # noqa: E402
from cdktf_cdktf_provider_aws.db_instance import DbInstance  # noqa: E402
from cdktf_cdktf_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter  # noqa: E402
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup  # noqa: E402
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup  # noqa: E402
from cdktf_cdktf_provider_aws.ebs_volume import EbsVolume  # noqa: E402
from cdktf_cdktf_provider_aws.eip import Eip  # noqa: E402
from cdktf_cdktf_provider_aws.eip_association import EipAssociation  # noqa: E402
from cdktf_cdktf_provider_aws.elasticache_replication_group import ElasticacheReplicationGroup  # noqa: E402
from cdktf_cdktf_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup  # noqa: E402
from cdktf_cdktf_provider_aws.iam_instance_profile import IamInstanceProfile  # noqa: E402
from cdktf_cdktf_provider_aws.iam_role import IamRole  # noqa: E402
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy  # noqa: E402
from cdktf_cdktf_provider_aws.instance import (  # noqa: E402
    Instance, InstanceMetadataOptions, InstanceNetworkInterface, InstanceRootBlockDevice,
)
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway  # noqa: E402
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias  # noqa: E402
from cdktf_cdktf_provider_aws.kms_key import KmsKey  # noqa: E402
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway  # noqa: E402
from cdktf_cdktf_provider_aws.network_interface import NetworkInterface  # noqa: E402
from cdktf_cdktf_provider_aws.route import Route  # noqa: E402
from cdktf_cdktf_provider_aws.route_table import RouteTable  # noqa: E402
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation  # noqa: E402
from cdktf_cdktf_provider_aws.route53_health_check import Route53HealthCheck  # noqa: E402
from cdktf_cdktf_provider_aws.route53_record import Route53Record  # noqa: E402
from cdktf_cdktf_provider_aws.route53_zone import Route53Zone  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (  # noqa: E402
    S3BucketLifecycleConfiguration, S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload, S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter, S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (  # noqa: E402
    S3BucketOwnershipControls, S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (  # noqa: E402
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration  # noqa: E402,E501
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret  # noqa: E402
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion  # noqa: E402
from cdktf_cdktf_provider_aws.security_group import SecurityGroup  # noqa: E402
from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter  # noqa: E402
from cdktf_cdktf_provider_aws.subnet import Subnet  # noqa: E402
from cdktf_cdktf_provider_aws.volume_attachment import VolumeAttachment  # noqa: E402
from cdktf_cdktf_provider_aws.vpc import Vpc  # noqa: E402
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint  # noqa: E402
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule  # noqa: E402
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_subnet import DataAwsSubnet  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_vpc import DataAwsVpc  # noqa: E402
# For a project's own stacks that import existing stores (examples/existing_data).
from cdktf_cdktf_provider_aws.data_aws_db_instance import DataAwsDbInstance  # noqa: E402
from cdktf_cdktf_provider_aws.data_aws_elasticache_replication_group import (  # noqa: E402
    DataAwsElasticacheReplicationGroup,
)
from cdktf import Postcondition  # noqa: E402
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment  # noqa: E402
from cdktf_cdktf_provider_aws.s3_object import S3Object  # noqa: E402
from cdktf_cdktf_provider_aws.flow_log import FlowLog  # noqa: E402
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA  # noqa: E402
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup  # noqa: E402
from cdktf_cdktf_provider_aws.cloudwatch_log_resource_policy import CloudwatchLogResourcePolicy  # noqa: E402
from cdktf_cdktf_provider_aws.route53_query_log import Route53QueryLog  # noqa: E402
