"""One self-contained Harbor on one EC2 instance, for the replication topologies (master-slaves,
master-master): Harbor's own PostgreSQL and Redis on the node, images in its own S3 bucket or on an
encrypted EBS data volume.

The EBS volume is a resource of its own, attached by ``aws_volume_attachment``: replacing the instance
re-attaches the same volume (the boot script formats only a blank volume), so the registry, its database
and the database password kept beside it survive. The S3 variant keeps Harbor's database on the root
volume: replacing that node keeps the images but not the projects and users (replicate them back).
The admin password is generated once into Secrets Manager (``admin_secret_arn``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from harbor_ha.aws import Construct, EbsVolume, Eip, EipAssociation, Fn, IamRole, IamRolePolicy, VolumeAttachment
from harbor_ha.cloud_init import CloudConfig, has_reference
from harbor_ha.constructs.interfaces import Connectable, Network
from harbor_ha.constructs.data_tier import grant, require, secret_reader_statements
from harbor_ha.constructs.harbor_host import HARBOR_PORTS, HarborHosts, check_common_props
from harbor_ha.constructs.storage import RegistryStorage, RegistryStorageProps
from harbor_ha.harbor_boot import harbor_cloud_config
from harbor_ha.harbor_release import DEFAULT_HARBOR_VERSION
from harbor_ha.harbor_config import HarborConfig, S3Storage, hostname_problem
from harbor_ha.rules import NODE_STORAGE, ROLE_TAG_KEY, SELF_SIGNED

DATA_DEVICE = "/dev/sdf"


@dataclass(frozen=True)
class StandaloneHarborNodeProps:
    """Where the node runs and how it stores images."""

    network: Network
    """A ``HarborNetwork`` (``vpc_id``, ``availability_zones``, ``public_subnet_ids``, ``private_subnet_ids``,
    ``log_bucket``: the image bucket's access logs go there)."""
    name: str = "harbor"
    """Prefix of names, tags and KMS aliases: give each node of a region its own. Default ``harbor``."""
    zone_index: int = 0
    """Which of the network's AZs (index) the node runs in. Default 0."""
    storage: str = "s3"
    """``s3`` (its own bucket) or ``ebs`` (an encrypted data volume at /data). Default ``s3``."""
    data_volume_gib: int = 200
    """With ``storage="ebs"``: size of the data volume in GiB, 20 to 16384. Default 200."""
    public: bool = False
    """Run in a public subnet with an Elastic IP (clients or a peer region reach it from the internet).
    Default False: a private subnet."""
    hostname: str = ""
    """Harbor's own name (its ``hostname`` and external URL). Default: the Elastic IP when ``public``, else the
    private address."""
    certificate_names: tuple[str, ...] = ()
    """More DNS names clients use for this node (e.g. a pull name shared by replicas), which a self-signed
    certificate carries beside ``hostname`` and the node's addresses. Default none."""
    instance_type: str = "m6i.large"
    """EC2 instance type (x86_64). Default ``m6i.large``."""
    harbor_version: str = DEFAULT_HARBOR_VERSION
    """Harbor release, 2.13.0 or later. Default ``2.15.2``."""
    volume_gib: int = 100
    """Root volume in GiB, 20 to 16384. Default 100."""
    ssh_cidrs: tuple[str, ...] = ()
    """Networks allowed SSH. Default none: no SSH rule (use SSM Session Manager)."""
    tls_certificate: str = SELF_SIGNED
    """``self-signed`` (made on the node) or the ARN of a Secrets Manager secret holding
    ``{"certificate": PEM, "private_key": PEM}``. Default ``self-signed``."""
    force_destroy: bool = False
    """With ``storage="s3"``: let ``terraform destroy`` delete a bucket that still holds images. Default False."""
    extra_cloud_config: CloudConfig | None = None
    """Run after Harbor is up, e.g. the replication configurator. Default none (see ``add_cloud_config``)."""
    instance_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the instance. Default none."""
    detailed_monitoring: bool = True
    """EC2 detailed (1-minute) monitoring. Default True."""
    ssm_access: bool = True
    """Attach AmazonSSMManagedInstanceCore for Session Manager. Default True."""
    ami_id: str = ""
    """Image of the node (Amazon Linux 2023 x86_64), kept for its lifetime: Harbor's data would not survive a
    replacement. Default: the AL2023 image current when the node is created."""

    def __post_init__(self) -> None:
        check_common_props(self)
        require(self.storage in NODE_STORAGE, "storage", self.storage, "one of " + ", ".join(map(repr, NODE_STORAGE)))
        require(isinstance(self.data_volume_gib, int) and 20 <= self.data_volume_gib <= 16384, "data_volume_gib",
                self.data_volume_gib, "a whole number from 20 to 16384")
        require(isinstance(self.zone_index, int) and self.zone_index >= 0, "zone_index", self.zone_index,
                "the index of one of the network's AZs (0, 1, ...)")
        for key, names in (("hostname", (self.hostname,) if self.hostname else ()),
                           ("certificate_names", self.certificate_names)):
            for name in names:
                problem = None if has_reference(name) else hostname_problem(name)
                require(problem is None, key, name, problem or "")


class StandaloneHarborNode(Construct):
    """Attributes: ``instance_id``, ``private_ip``, ``public_ip`` (None unless ``public``), ``url``,
    ``admin_secret_arn``, ``security_group_id``, ``role``, ``user_data`` (rendered cloud-config), ``storage``
    (the ``RegistryStorage``, or None on EBS), ``data_volume_id`` (or None on S3)."""

    def __init__(self, scope: Construct, id_: str, *, props: StandaloneHarborNodeProps) -> None:
        super().__init__(scope, id_)
        network = props.network
        zones = network.availability_zones
        require(props.zone_index < len(network.private_subnet_ids), "zone_index", props.zone_index,
                f"below the number of the network's AZs ({len(network.private_subnet_ids)})")
        hosts = HarborHosts(self, "hosts", name=props.name, vpc_id=network.vpc_id,
                            instance_type=props.instance_type, volume_gib=props.volume_gib,
                            ssh_cidrs=props.ssh_cidrs, tls_certificate=props.tls_certificate,
                            detailed_monitoring=props.detailed_monitoring, ssm_access=props.ssm_access,
                            ami_id=props.ami_id)
        self._hosts = hosts
        self._props = props
        self.role = hosts.role
        self.security_group_id = hosts.security_group_id
        self.admin_secret_arn = hosts.admin_secret_arn

        self.storage: RegistryStorage | None = None
        self.data_volume_id: str | None = None
        s3 = None
        environment = hosts.environment()
        if props.storage == "s3":
            self.storage = RegistryStorage(self, "storage", props=RegistryStorageProps(
                name=props.name, force_destroy=props.force_destroy, access_logs=network.log_bucket))
            hosts.needed_at_boot(self.storage.grant_read_write(self.role))
            s3 = S3Storage(region=self.storage.region, bucket=self.storage.bucket_name,
                           kms_key_arn=self.storage.kms_key_arn)
        else:
            volume = EbsVolume(self, "data", availability_zone=zones[props.zone_index], size=props.data_volume_gib,
                               type="gp3", encrypted=True, kms_key_id=hosts.kms_key_arn,
                               tags={"Name": f"{props.name}-data"})
            self.data_volume_id = volume.id
            environment["DATA_VOLUME_ID"] = volume.id

        address = None
        if props.public:
            address = Eip(self, "address", domain="vpc", tags={"Name": props.name})
        environment["HARBOR_HOSTNAME"] = props.hostname or (address.public_ip if address else "")
        # Peers in another region replicate to the Elastic IP, so a self-signed certificate carries it too.
        environment["HARBOR_TLS_NAMES"] = ",".join([*props.certificate_names, *([address.public_ip] if address else [])])
        self._environment = environment
        self._config = HarborConfig(harbor_version=props.harbor_version, s3=s3)
        self._extra = props.extra_cloud_config or CloudConfig()
        subnets = network.public_subnet_ids if props.public else network.private_subnet_ids
        self.user_data = self._render()
        # A public node also gets an automatic address: its boot downloads before the Elastic IP is associated.
        self._instance = hosts.add_instance("harbor", subnet_id=subnets[props.zone_index], user_data=self.user_data,
                                            public_address=props.public,
                                            tags={**props.instance_tags, ROLE_TAG_KEY: "harbor"})
        self.instance_id = self._instance.id
        self.private_ip = self._instance.private_ip
        self.public_ip = address.public_ip if address else None
        if address:
            EipAssociation(self, "address-association", allocation_id=address.allocation_id,
                           instance_id=self.instance_id)
        if self.data_volume_id:
            # Terraform stops the instance before detaching, so Harbor's database closes cleanly.
            VolumeAttachment(self, "data-attachment", device_name=DATA_DEVICE, volume_id=self.data_volume_id,
                             instance_id=self.instance_id, stop_instance_before_detaching=True)
        host = props.hostname or self.public_ip or self.private_ip
        self.url = f"https://{props.hostname}" if props.hostname else Fn.join("", ["https://", host])

    def _render(self) -> str:
        return harbor_cloud_config(config=self._config, environment=self._environment,
                                   data_volume=self.data_volume_id is not None, extra=self._extra).render()

    def add_cloud_config(self, extra: CloudConfig) -> None:
        """Run ``extra`` too at first boot, after Harbor is up (e.g. the replication configurator, whose
        peers are known only once every node exists). Changes after the first deploy reach only a new
        instance (user-data changes are ignored, see ``harbor_host``)."""
        self._extra = self._extra.merge(extra)
        self.user_data = self._render()
        self._instance.user_data = self.user_data

    def allow_from(self, peer: Connectable, ports: Sequence[int] = HARBOR_PORTS) -> None:
        """Admit members of ``peer``'s security group (e.g. a replicating Harbor) to ``ports``."""
        self._hosts.allow_from(peer, ports)

    def allow_from_cidrs(self, cidrs: Sequence[str], ports: Sequence[int] = HARBOR_PORTS) -> None:
        """Admit the networks ``cidrs`` (clients, a peer region's NAT addresses) to ``ports``."""
        self._hosts.allow_from_cidrs(cidrs, ports)

    def needed_at_boot(self, policy: IamRolePolicy) -> IamRolePolicy:
        """Make the instance wait for ``policy`` (a grant its boot steps use, made by another construct)."""
        address = f"{policy.terraform_resource_type}.{policy.friendly_unique_id}"
        self._instance.depends_on = [*(self._instance.depends_on or []), address]
        return policy

    def grant_read_admin_secret(self, role: IamRole) -> IamRolePolicy:
        """Let ``role`` (another Harbor that replicates into this one) read this node's admin password."""
        return grant(self, role, "read-admin-password",
                     secret_reader_statements(self.admin_secret_arn, self._hosts.kms_key_arn))
