"""harbor.yml as harbor-ha renders it, held against Harbor's own template (make/harbor.yml.tmpl of the
pinned release, commented-out blocks included): every key is Harbor's. Harbor's installer code itself judges
the harbor.yml the nodes write in test_harbor_installer.py."""

from __future__ import annotations

import re

import pytest
import yaml

from harbor_ha.harbor_config import (
    TLS_CERTIFICATE, ExternalDatabase, ExternalRedis, HarborConfig, S3Storage, harbor_yml_document, placeholder,
    render_harbor_yml,
)
from conftest import reference_file

# A key line that the template comments out: "# key:", "#   key: value", "  # key:" (not "# # prose").
_COMMENTED_KEY = re.compile(r"^(\s*)# ?(\s*)([A-Za-z_][A-Za-z0-9_]*:(\s.*)?)$")
# Options of the distribution S3 storage driver (distribution.github.io/distribution/storage-drivers/s3/),
# which the template leaves to that documentation: the one documented exception to "keys of the template".
S3_DRIVER_OPTIONS = {"accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle", "bucket", "encrypt",
                     "keyid", "secure", "skipverify", "v4auth", "chunksize", "multipartcopychunksize",
                     "multipartcopymaxconcurrency", "multipartcopythresholdsize", "rootdirectory", "storageclass",
                     "objectacl", "loglevel", "accelerate", "usedualstack"}

FULL = HarborConfig(
    harbor_version="2.15.2", hostname="registry.example.com",
    external_database=ExternalDatabase(host="db.example.internal", port=5432, db_name="registry",
                                       username="harbor"),
    external_redis=ExternalRedis(host="redis.example.internal", port=6379),
    s3=S3Storage(region="us-east-1", bucket="harbor-registry-x", kms_key_arn="arn:aws:kms:us-east-1:1:key/k"))
BUILT_IN = HarborConfig(harbor_version="2.15.2")


def template_document(text: str) -> dict:
    """Harbor's template with every commented-out key line uncommented, as one YAML mapping."""
    lines = []
    for line in text.splitlines():
        match = _COMMENTED_KEY.match(line)
        if match:
            lines.append(match.group(1) + match.group(2) + match.group(3))
        elif not line.lstrip().startswith("#"):
            lines.append(line)
    return yaml.safe_load("\n".join(lines))


@pytest.fixture(scope="module")
def template() -> dict:
    return template_document(reference_file("harbor.yml.tmpl").read_text())


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,), value
            yield from _paths(value, prefix + (key,))


def _lookup(doc, path):
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return KeyError
        doc = doc[key]
    return doc


def _shape(value) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def test_template_parser_sees_the_commented_blocks(template):
    """The checks below are only as good as the parse: the commented-out blocks must be in it."""
    assert template["external_database"]["harbor"]["ssl_mode"] == "disable"
    assert template["external_redis"]["tlsOptions"] == {"enable": False, "rootCA": None}
    assert template["storage_service"]["filesystem"] == {"maxthreads": 100}
    assert template["https"]["strong_ssl_ciphers"] is False
    assert "protocol" in template["log"]["external_endpoint"]


@pytest.mark.parametrize("config", [FULL, BUILT_IN], ids=["external-services", "built-in-services"])
def test_every_key_is_harbors_and_has_harbors_shape(config, template):
    rendered = yaml.safe_load(render_harbor_yml(config))
    assert rendered == harbor_yml_document(config)
    for path, value in _paths(rendered):
        if path == ("storage_service", "s3"):
            # The template shows only the filesystem driver; prepare's validate() names the others.
            assert isinstance(value, dict)
            continue
        if path[:2] == ("storage_service", "s3"):
            assert len(path) == 3 and path[2] in S3_DRIVER_OPTIONS, path
            continue
        expected = _lookup(template, path)
        assert expected is not KeyError, f"{'.'.join(path)} is not a key of Harbor's harbor.yml.tmpl"
        if expected is not None:
            assert _shape(value) == _shape(expected), f"{'.'.join(path)}: {_shape(value)}, Harbor has {expected!r}"


def test_built_in_services_use_harbors_own_database_and_local_storage():
    doc = yaml.safe_load(render_harbor_yml(BUILT_IN))
    assert not {"external_database", "external_redis", "storage_service"} & set(doc)
    assert doc["database"]["password"] == placeholder("DB_PASSWORD")
    assert doc["hostname"] == placeholder("HOSTNAME")


def test_no_secret_is_rendered_only_single_quoted_placeholders():
    text = render_harbor_yml(FULL)
    for name in ("ADMIN_PASSWORD", "DB_PASSWORD", "REDIS_PASSWORD"):
        # configure-harbor.sh escapes values for single-quoted YAML scalars.
        assert f"'{placeholder(name)}'" in text
    assert "Harbor12345" not in text and "root123" not in text
    assert f"certificate: {TLS_CERTIFICATE}" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"harbor_version": "latest"}, "harbor_version = 'latest': allowed is a Harbor release"),
])
def test_bad_inputs_name_the_input(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        HarborConfig(**kwargs)


def test_database_tls_cannot_be_turned_off():
    with pytest.raises(ValueError, match="ssl_mode = 'disable': allowed is one of require, verify-ca, verify-full"):
        ExternalDatabase(host="h", port=5432, db_name="registry", username="harbor", ssl_mode="disable")


def test_terraform_values_are_lifted_out_of_the_template_so_it_travels_compressed():
    from harbor_ha.harbor_boot import configure_part
    token = "${TfToken[TOKEN.7]}"
    config = HarborConfig(harbor_version="2.15.2", hostname="registry.example.com",
                          external_database=ExternalDatabase(host=token, port=5432, db_name="registry",
                                                             username="harbor"))
    part, lifted = configure_part(config)
    assert lifted == {"HARBOR_YML_TF_VALUE_0": token}
    (template,) = [f for f in part.files if f.path.endswith("harbor.yml.tmpl")]
    assert token not in template.content
    assert yaml.safe_load(template.content)["external_database"]["harbor"]["host"] == placeholder("TF_VALUE_0")
    assert not template.has_reference, "without a reference it travels in the compressed archive"
