"""The load-balancer pair of the active-active topology: two directors in two AZs running keepalived (VRRP
elects which one holds the VIP) and LVS in one-arm NAT mode in front of the Harbor servers.

See ``harbor_ha.keepalived`` for the VRRP, health-check and LVS-NAT choices. The real-server list is not in the
directors' user-data: it is the SSM parameter ``pool_parameter`` that this construct writes and lb-pool on
each director applies (see ``harbor_ha.keepalived``), so a change of the fleet never stops or replaces a
director. The directors run Amazon Linux 2023: without ``ami_id`` a director keeps the image it was created with
(a newer image in the SSM parameter does not replace it); a new ``ami_id`` replaces them, which ``harbor-ha up``
rolls one at a time (the BACKUP first, then the VIP moves to it). Administration goes through SSM Session Manager (the role carries
AmazonSSMManagedInstanceCore) unless ``ssm_access`` is off; SSH is opened only to ``ssh_cidrs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from harbor_ha.aws import (
    Construct, DataAwsCallerIdentity, DataAwsPartition, DataAwsRegion, DataAwsSsmParameter, Fn, IamInstanceProfile, IamRole, IamRolePolicyAttachment,
    Instance, InstanceMetadataOptions, InstanceRootBlockDevice, SecurityGroup, SsmParameter,
    TerraformResourceLifecycle,
)
from harbor_ha.constructs.connections import allow_egress_tcp, allow_tcp_from_cidr, allow_vrrp_within
from harbor_ha.constructs.data_tier import customer_key, grant, require, require_rule, require_whole, statement
from harbor_ha import cloud_facts, rules
from harbor_ha.constructs.checkov import skip_check
from harbor_ha.constructs.harbor_host import (
    AL2023_X86_64, EC2_TRUST, PUBLIC_ADDRESS_REASON, ebs_optimized, redirect_only_http,
)
from harbor_ha.constructs.interfaces import LoadBalancingTargets, Network
from harbor_ha.constructs.static_ips import StaticIps
from harbor_ha.keepalived import (
    DEFAULT_INTERFACE, SERVICE_PORTS, VrrpPair, director_cloud_config, director_configs, pool_document,
    pool_parameter_name,
)
from harbor_ha.node_reports import LB_POOL_TAG, report_statement, report_tags_ignored
from harbor_ha.rules import ROLE_TAG_KEY


@dataclass(frozen=True)
class LoadBalancerPairProps:
    """Where the directors run and what they balance."""

    network: Network
    """A ``HarborNetwork`` (its ``vpc_id`` is used)."""
    static_ips: StaticIps
    """Holds the VIP and the directors' fixed addresses (``lb_count=2``)."""
    targets: LoadBalancingTargets
    """What the pair balances, a ``HarborFleet``: its ``target_ips`` are the pool, written to the SSM parameter
    ``pool_parameter`` (not to the directors' user-data), and its security group admits the directors."""
    name: str = "harbor-lb"
    """Prefix of the Name tags and IAM names. Default ``harbor-lb``."""
    instance_type: str = "t3.small"
    """EC2 instance type of both directors (x86_64 unless ``ami_parameter`` changes). Default ``t3.small``."""
    client_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Networks allowed to reach HTTPS 443 and HTTP 80. Default everyone (``0.0.0.0/0``)."""
    ssh_cidrs: tuple[str, ...] = ()
    """Networks allowed SSH; default none (no SSH rule at all)."""
    ssm_access: bool = True
    """Attach AmazonSSMManagedInstanceCore so operators reach the directors by Session Manager. Default True."""
    ami_parameter: str = AL2023_X86_64
    """SSM parameter naming the AMI when ``ami_id`` is empty. Default Amazon Linux 2023, x86_64."""
    ami_id: str = ""
    """Image of both directors; a new one replaces them. Default: the image ``ami_parameter`` names when a
    director is created, kept by it."""
    interface: str = DEFAULT_INTERFACE
    """The network interface VRRP runs on. Default ``ens5`` (Nitro instance types)."""
    root_volume_gib: int = 16
    """Size of the encrypted gp3 root volume, 8 (the AMI's own size) to 100 GiB. Default 16."""

    def __post_init__(self) -> None:
        addresses = self.static_ips.lb_addresses
        require(len(addresses) == 2, "static_ips", f"{len(addresses)} LB addresses",
                "StaticIps with lb_count=2")
        require(addresses[0].availability_zone != addresses[1].availability_zone
                and addresses[0].subnet_id != addresses[1].subnet_id, "static_ips",
                [a.availability_zone for a in addresses], "LB addresses in two different AZs")
        servers = tuple(self.targets.target_ips)
        require(len(servers) >= 1 and len(set(servers)) == len(servers), "targets", servers,
                "targets with one or more distinct target_ips")
        require(len(self.client_cidrs) >= 1, "client_cidrs", self.client_cidrs, "one or more IPv4 networks")
        require_rule(self, "ami_id", rules.AMI_ID)
        facts = cloud_facts.instance_type(self.instance_type)
        require(facts is not None and facts.first_interface == self.interface, "instance_type", self.instance_type,
                f"an EC2 instance type whose first interface is {self.interface} (VRRP runs there), such as "
                "t3.small (harbor_ha/cloud_facts.py lists them)")
        require_whole(self, "root_volume_gib", 8, 100)


class LoadBalancerPair(Construct):
    """Two keepalived + LVS directors holding the VIP, one per AZ.

    Attributes: ``instance_ids``, ``private_ips``, ``security_group_id``, ``role`` (shared by both),
    ``keepalived_configs`` (the VRRP keepalived configuration of director 0 and 1), ``pool_parameter`` (name
    of the SSM parameter holding the real-server list). The targets admit the directors on HTTPS and HTTP.
    """

    def __init__(self, scope: Construct, id_: str, *, props: LoadBalancerPairProps) -> None:
        super().__init__(scope, id_)
        static_ips = props.static_ips
        addresses = static_ips.lb_addresses
        self.private_ips = [a.private_ip for a in addresses]
        pair = VrrpPair(name=static_ips.vip_name, addresses=tuple(self.private_ips),
                        interface=props.interface)
        self.keepalived_configs = list(director_configs(pair))
        self.security_group_id = self._security_group(props)
        self.role = IamRole(self, "role", name_prefix=f"{props.name}-", assume_role_policy=EC2_TRUST)
        static_ips.grant_associate_vip(self.role)
        self.pool_parameter = pool_parameter_name(pair.name)
        # Not a secret, but encrypted at rest with a key of the deployment's own, like everything else.
        key = customer_key(self, alias=f"{props.name}-pool", description=f"{props.name}: the LVS real-server list")
        SsmParameter(self, "pool", name=self.pool_parameter, type="SecureString", key_id=key.arn,
                            description=f"{props.name}: the LVS real servers (lb-pool on each director applies it)",
                            value=Fn.jsonencode(pool_document(tuple(props.targets.target_ips))))
        self._grant_pool(key.arn, static_ips.vip_name)
        if props.ssm_access:
            partition = DataAwsPartition(self, "partition").partition
            IamRolePolicyAttachment(self, "ssm-core", role=self.role.name,
                                    policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")
        profile = IamInstanceProfile(self, "profile", name_prefix=f"{props.name}-", role=self.role.name)
        ami = props.ami_id or DataAwsSsmParameter(self, "ami", name=props.ami_parameter).value
        instances = [
            Instance(
                self, f"director-{i}", ami=ami, instance_type=props.instance_type,
                subnet_id=address.subnet_id, private_ip=address.private_ip,
                # Public subnets have no NAT route: the BACKUP director, without the VIP, reaches the EC2 API
                # (vip-notify) and the package mirrors through an automatic public address.
                associate_public_ip_address=True,
                vpc_security_group_ids=[self.security_group_id], iam_instance_profile=profile.name,
                monitoring=True, ebs_optimized=ebs_optimized(props.instance_type),
                metadata_options=InstanceMetadataOptions(
                    http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
                root_block_device=InstanceRootBlockDevice(
                    encrypted=True, volume_type="gp3", volume_size=props.root_volume_gib),
                user_data=director_cloud_config(pair, i, self.pool_parameter).render(),
                tags={"Name": f"{props.name}-{i}", ROLE_TAG_KEY: "lb", **static_ips.vip_tags},
                # lb-pool's acknowledgement is the director's own tag, not Terraform's; ebs_optimized: a
                # change would stop and start a running director.
                lifecycle=TerraformResourceLifecycle(
                    ignore_changes=[*([] if props.ami_id else ["ami"]), *report_tags_ignored(LB_POOL_TAG),
                                    "ebs_optimized"]))
            for i, address in enumerate(addresses)]
        for instance in instances:
            skip_check(instance, "CKV_AWS_88", PUBLIC_ADDRESS_REASON)
        self.instance_ids = [instance.id for instance in instances]
        static_ips.associate_initially(self.instance_ids[0])
        props.targets.allow_from(self, list(SERVICE_PORTS))

    def _grant_pool(self, key_arn: str, deployment: str) -> None:
        """lb-pool reads the pool and tags its director with the version it applied. The parameter's ARN is
        spelled out rather than referenced: a reference would make every pool change re-plan this policy."""
        partition = DataAwsPartition(self, "pool-partition").partition
        region = DataAwsRegion(self, "pool-region").name
        account = DataAwsCallerIdentity(self, "pool-account").account_id
        parameter_arn = f"arn:{partition}:ssm:{region}:{account}:parameter{self.pool_parameter}"
        grant(self, self.role, "lb-pool", [statement(["ssm:GetParameter"], [parameter_arn]),
                                           statement(["kms:Decrypt"], [key_arn]),
                                           report_statement(partition, deployment, "lb", LB_POOL_TAG)])

    def _security_group(self, props: LoadBalancerPairProps) -> str:
        group = SecurityGroup(self, "security-group", name_prefix=f"{props.name}-", vpc_id=props.network.vpc_id,
                              description="harbor-ha load balancers: clients in, VRRP between the pair",
                              tags={"Name": props.name})
        for port in SERVICE_PORTS:
            for n, cidr in enumerate(props.client_cidrs):
                redirect_only_http(allow_tcp_from_cidr(
                    self, f"clients-{port}-{n}", to_group_id=group.id, cidr=cidr, port=port,
                    description="Harbor clients"), port, cidr)
            # Harbor servers (any address in the VPC), the AWS API (vip-notify) and package repositories.
            allow_egress_tcp(self, f"out-{port}", from_group_id=group.id, cidr="0.0.0.0/0", port=port,
                             description="Harbor servers, AWS API, package repositories")
        for n, cidr in enumerate(props.ssh_cidrs):
            allow_tcp_from_cidr(self, f"ssh-{n}", to_group_id=group.id, cidr=cidr, port=22, description="SSH")
        allow_vrrp_within(self, group.id)
        return group.id
