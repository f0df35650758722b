"""What every Harbor VM of one deployment shares, for the Harbor fleet and the standalone node alike: an
instance role and profile, a security group that admits nobody until ``allow_from``, a KMS key for the
deployment's Harbor secrets, the generate-once admin password, and the instance settings.

Instances run Amazon Linux 2023 with IMDSv2 required and a metadata hop limit of 2 (Harbor's containers
reach the instance role through the docker bridge, goharbor#23139), an encrypted gp3 root volume and
detailed monitoring. Update policy: without ``ami_id`` a VM keeps the AL2023 image it was created with (``ami``
changes are ignored: a new image in the SSM parameter must not replace running nodes behind harbor-ha's back);
with ``ami_id`` a fleet node runs that image, and a new ``ami_id`` replaces it, rolled like a new user-data. A
fleet node (shared data tier, nothing of
its own on the instance) is replaced when its user-data changes (a new Harbor release, hostname or
certificate): ``harbor-ha up`` rolls those replacements one node at a time, waiting for each new node's
health report (``harbor_ha.rolling``). A standalone node keeps Harbor's database on the instance, so its
``user_data`` changes are ignored and such settings are refused once deployed (``harbor_ha.changes``).
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from harbor_ha.aws import (
    Construct, DataAwsCallerIdentity, DataAwsIamPolicyDocumentStatement, DataAwsIamPolicyDocumentStatementCondition,
    DataAwsPartition, DataAwsRegion, DataAwsSsmParameter, IamInstanceProfile,
    IamRole, IamRolePolicy, IamRolePolicyAttachment, Instance, InstanceMetadataOptions, InstanceRootBlockDevice,
    SecretsmanagerSecret, SecretsmanagerSecretVersion, SecurityGroup, TerraformResource, TerraformResourceLifecycle,
    VpcSecurityGroupIngressRule,
)
from harbor_ha import cloud_facts
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.connections import allow_egress_tcp, allow_tcp, allow_tcp_from_cidr
from harbor_ha.constructs.interfaces import Connectable
from harbor_ha import rules
from harbor_ha.harbor_release import release_problem
from harbor_ha.rules import SELF_SIGNED
from harbor_ha.constructs.data_tier import (
    customer_key, ephemeral_random_password, grant, require, require_rule, secret_reader_statements, statement,
)
from harbor_ha.node_reports import HEALTH_TAG, report_tags_ignored

AL2023_X86_64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
HTTP_PORT = 80
HARBOR_PORTS = (443, HTTP_PORT)
PUBLIC_ADDRESS_REASON = ("holds a public address by design: the VIP holder or a Harbor reached from the internet, in "
                         "a public subnet without NAT")


def redirect_only_http(rule: VpcSecurityGroupIngressRule, port: int, cidr: str = "0.0.0.0/0"
                       ) -> VpcSecurityGroupIngressRule:
    """Note on an ingress rule for port 80 open to the internet (``cidr``) or to a peer group that it carries
    nothing but Harbor's redirect to HTTPS."""
    if port == HTTP_PORT and cidr == "0.0.0.0/0":
        skip_check(rule, "CKV_AWS_260", "port 80 carries only Harbor's redirect to HTTPS (harbor.yml has https, "
                   "so Harbor's nginx answers plain HTTP with a 308 to https://)")
    return rule


def ebs_optimized(instance_type: str) -> bool | None:
    """True where the instance type can be EBS-optimized (cloud_facts); None leaves AWS's default."""
    facts = cloud_facts.instance_type(instance_type)
    return True if facts and facts.ebs_optimized else None


def check_common_props(props: object) -> None:
    """The props every Harbor VM construct has: version, instance type, volume, TLS, SSH networks, AMI."""
    release = release_problem(props.harbor_version)
    require(release is None, "harbor_version", props.harbor_version, release or "")
    require_rule(props, "instance_type", rules.INSTANCE_TYPE)
    require_rule(props, "volume_gib", rules.VOLUME_GIB)
    require(props.tls_certificate == SELF_SIGNED or rules.SECRET_ARN.ok(props.tls_certificate), "tls_certificate",
            props.tls_certificate, f"'self-signed' or {rules.SECRET_ARN.allowed}, holding {{\"certificate\", "
            "\"private_key\"}")
    require(all(rules.SSH_CIDR.ok(cidr) for cidr in props.ssh_cidrs) and len(set(props.ssh_cidrs)) == len(props.ssh_cidrs),
            "ssh_cidrs", props.ssh_cidrs, f"distinct {rules.SSH_CIDR.allowed}")
    require_rule(props, "name", rules.HOSTS_NAME)
    require_rule(props, "ami_id", rules.AMI_ID)


class HarborHosts(Construct):
    """The shared parts of a group of Harbor VMs; ``add_instance`` makes one VM.

    Attributes: ``role``, ``security_group_id``, ``kms_key_arn``, ``admin_secret_arn``, ``region``,
    ``arn_prefix`` (``arn:<partition>:<service>:<region>:<account>`` template, see ``arn``)."""

    def __init__(self, scope: Construct, id_: str, *, name: str, vpc_id: str, instance_type: str, volume_gib: int,
                 ssh_cidrs: Sequence[str], tls_certificate: str, detailed_monitoring: bool,
                 ssm_access: bool, ami_id: str = "") -> None:
        super().__init__(scope, id_)
        self._name = name
        self._instance_type = instance_type
        self._volume_gib = volume_gib
        self._monitoring = detailed_monitoring
        self._peers = 0
        self._needed_at_boot: list[TerraformResource] = []
        self.region = DataAwsRegion(self, "region").name
        self._partition = self.partition = DataAwsPartition(self, "partition").partition
        self._account = DataAwsCallerIdentity(self, "account").account_id

        # No inline rules: Terraform drops AWS's default allow-all egress; the rule resources below are all.
        group = SecurityGroup(self, "security-group", name_prefix=f"{name}-", vpc_id=vpc_id,
                              description=f"{name}: Harbor servers, admitting only the groups allowed in",
                              tags={"Name": name})
        self.security_group_id = group.id
        # Packages, GitHub releases, container images, and the AWS APIs (S3, Secrets Manager, KMS, SSM).
        allow_egress_tcp(self, "out-https", from_group_id=group.id, cidr="0.0.0.0/0", port=443,
                         description="HTTPS: packages, images, AWS APIs, peer Harbors")
        for n, cidr in enumerate(ssh_cidrs):
            allow_tcp_from_cidr(self, f"ssh-{n}", to_group_id=group.id, cidr=cidr, port=22, description="SSH")

        self.role = IamRole(self, "role", name_prefix=f"{name}-", assume_role_policy=EC2_TRUST)
        if ssm_access:
            IamRolePolicyAttachment(self, "ssm-core", role=self.role.name,
                                    policy_arn=f"arn:{self._partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")
        # Token strings read once: every read is a round trip to jsii's node process, per instance otherwise.
        self._profile_name = IamInstanceProfile(self, "profile", name_prefix=f"{name}-", role=self.role.name).name
        self._ami_pinned = bool(ami_id)
        self._ami_id = ami_id or DataAwsSsmParameter(self, "ami", name=AL2023_X86_64).value

        self.key = customer_key(self, alias=f"{name}-harbor", description=f"{name}: Harbor secrets")
        self.kms_key_arn = self.key.arn
        admin = SecretsmanagerSecret(self, "admin-password", name_prefix=f"{name}-harbor-admin-",
                                     kms_key_id=self.key.arn, description=f"{name}: Harbor admin password")
        # Harbor wants upper and lower case and a digit; punctuation would need quoting in every client.
        generated = ephemeral_random_password(self, "admin-password-generator", password_length=24,
                                              exclude_punctuation=True, include_space=False,
                                              require_each_included_type=True)
        # Written once (version 1) through a write-only argument: the password is in neither the plan nor
        # the state, and a plan after apply does not generate another. A deployment made when the value was
        # still a plain secret_string keeps the password Harbor was installed with (changes to both ignored).
        SecretsmanagerSecretVersion(self, "admin-password-value", secret_id=admin.id,
                                    secret_string_wo=generated, secret_string_wo_version=1,
                                    lifecycle=TerraformResourceLifecycle(
                                        ignore_changes=["secret_string", "secret_string_wo_version"]))
        self.admin_secret_arn = admin.arn
        skip_check(admin, "CKV2_AWS_57", "Harbor reads its initial admin password once, at install: a rotated "
                   "secret would no longer be Harbor's password (change it in Harbor, then here)")
        self.grant("read-admin-password", secret_reader_statements(admin.arn, self.key.arn))
        self.tls_secret_arn = "" if tls_certificate == SELF_SIGNED else tls_certificate
        if self.tls_secret_arn:
            self.grant("read-tls-certificate", [
                statement(["secretsmanager:GetSecretValue"], [self.tls_secret_arn]),
                # Whatever key encrypts the given secret, only through Secrets Manager of the secret's region.
                DataAwsIamPolicyDocumentStatement(
                    effect="Allow", actions=["kms:Decrypt"], resources=["*"],
                    condition=[DataAwsIamPolicyDocumentStatementCondition(
                        test="StringEquals", variable="kms:ViaService",
                        values=[f"secretsmanager.{self.tls_secret_arn.split(':')[3]}.amazonaws.com"])])])

    def arn(self, service: str, resource: str) -> str:
        """An ARN in this stack's partition, region and account."""
        return f"arn:{self._partition}:{service}:{self.region}:{self._account}:{resource}"

    def grant(self, purpose: str, statements: Sequence[DataAwsIamPolicyDocumentStatement]) -> IamRolePolicy:
        """An inline policy on the hosts' role; instances wait for it (their boot scripts need it)."""
        return self.needed_at_boot(grant(self, self.role, purpose, statements))

    def needed_at_boot(self, resource: TerraformResource) -> TerraformResource:
        """Make instances added from now on wait for ``resource`` (a grant by another construct, or an object
        their boot fetches)."""
        self._needed_at_boot.append(resource)
        return resource

    def environment(self) -> dict[str, str]:
        """The boot scripts' settings that every Harbor VM has."""
        return {"AWS_DEFAULT_REGION": self.region, "ADMIN_SECRET_ARN": self.admin_secret_arn,
                "TLS_SECRET_ARN": self.tls_secret_arn}

    def allow_from(self, peer: Connectable, ports: Sequence[int] = HARBOR_PORTS) -> list[VpcSecurityGroupIngressRule]:
        """Admit members of ``peer``'s security group (e.g. the load balancers) to Harbor's ``ports``."""
        self._peers += 1
        return [redirect_only_http(allow_tcp(
            self, f"from-peer-{self._peers}-{port}", to_group_id=self.security_group_id,
            from_group_id=peer.security_group_id, port=port, description="Harbor clients"), port) for port in ports]

    def allow_from_cidrs(self, cidrs: Sequence[str], ports: Sequence[int] = HARBOR_PORTS
                         ) -> list[VpcSecurityGroupIngressRule]:
        """Admit the networks ``cidrs`` to Harbor's ``ports``."""
        self._peers += 1
        return [redirect_only_http(allow_tcp_from_cidr(
            self, f"from-cidr-{self._peers}-{n}-{port}", to_group_id=self.security_group_id, cidr=cidr, port=port,
            description="Harbor clients"), port, cidr) for n, cidr in enumerate(cidrs) for port in ports]

    def allow_egress_to(self, id_: str, *, cidr: str, port: int, description: str) -> None:
        allow_egress_tcp(self, id_, from_group_id=self.security_group_id, cidr=cidr, port=port,
                         description=description)

    def add_instance(self, id_: str, *, subnet_id: str, user_data: str, private_ip: str | None = None,
                     public_address: bool = False, tags: Mapping[str, str] | None = None,
                     replace_on_new_user_data: bool = False) -> Instance:
        """One Harbor VM; with ``replace_on_new_user_data`` a changed user-data or pinned AMI replaces it (else
        both are ignored: the VM keeps what it holds)."""
        keeps_ami = not (self._ami_pinned and replace_on_new_user_data)
        ignored = (["ami"] if keeps_ami else []) + report_tags_ignored(HEALTH_TAG) \
            + ([] if replace_on_new_user_data else ["user_data"])
        instance = Instance(
            self, id_, ami=self._ami_id, instance_type=self._instance_type, subnet_id=subnet_id,
            ebs_optimized=ebs_optimized(self._instance_type),
            private_ip=private_ip, associate_public_ip_address=public_address or None,
            vpc_security_group_ids=[self.security_group_id],
            iam_instance_profile=self._profile_name, monitoring=self._monitoring,
            metadata_options=InstanceMetadataOptions(http_endpoint="enabled", http_tokens="required",
                                                     http_put_response_hop_limit=2),
            root_block_device=InstanceRootBlockDevice(encrypted=True, kms_key_id=self.kms_key_arn, volume_type="gp3",
                                                      volume_size=self._volume_gib, delete_on_termination=True),
            user_data=user_data, user_data_replace_on_change=replace_on_new_user_data or None,
            tags={"Name": f"{self._name}-{id_}", **(tags or {})}, depends_on=list(self._needed_at_boot),
            # ebs_optimized: a change would stop and start a running node (Nitro types are EBS-optimized anyway).
            lifecycle=TerraformResourceLifecycle(ignore_changes=[*ignored, "ebs_optimized"]))
        if public_address:
            skip_check(instance, "CKV_AWS_88", PUBLIC_ADDRESS_REASON)
        return instance
